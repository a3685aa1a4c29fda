package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/lambdabuild"
)

// lambdaContext lists what one Lambda's build needs from the repository: the asset's source fingerprint
// covers these and nothing else (not the download cache, build output, the DAG or docs). It also keeps the
// two functions' assets apart in the CDK's in-process staging cache, whose key does not see bundling
// options passed from Go. The CDK applies the same patterns when it hashes the build output, so they must
// keep the binary too.
func lambdaContext(fn lambdabuild.Function) []string {
	return []string{"*", "!go.mod", "!go.sum", "!internal/", "!functions/" + fn.Name + "/", "!" + lambdabuild.BinaryName}
}

// lambdaArchitecture maps the props' architecture to the CDK's.
func lambdaArchitecture(props Props) awslambda.Architecture {
	if props.LambdaArchitecture == lambdabuild.ARM64 {
		return awslambda.Architecture_ARM_64()
	}
	return awslambda.Architecture_X86_64()
}

// lambdaCode is the function's deployment package. With LambdaDir set it is the prebuilt
// LambdaDir/<name>/bootstrap. Otherwise the CDK builds it while it synthesizes: on this host when it can
// (lambdabuild.Build), else with the same go build in the golang container. The asset's hash is the hash of
// the built binary, so an unchanged function is not uploaded or updated again.
func lambdaCode(props Props, fn lambdabuild.Function) awslambda.Code {
	if props.LambdaDir != "" {
		return awslambda.Code_FromAsset(jsii.String(filepath.Join(props.LambdaDir, fn.Name)), nil)
	}
	arch := props.LambdaArchitecture
	env := map[string]*string{}
	for k, v := range lambdabuild.DockerEnv(fn, arch) {
		env[k] = jsii.String(v)
	}
	return awslambda.Code_FromAsset(jsii.String(props.RepoRoot), &awss3assets.AssetOptions{
		Exclude:       jsii.Strings(lambdaContext(fn)...),
		IgnoreMode:    awscdk.IgnoreMode_DOCKER,
		AssetHashType: awscdk.AssetHashType_OUTPUT,
		Bundling: &awscdk.BundlingOptions{
			Image:       awscdk.DockerImage_FromRegistry(jsii.String(lambdabuild.DockerImage)),
			Platform:    jsii.String(arch.DockerPlatform()),
			Command:     jsii.Strings(lambdabuild.DockerCommand(fn, *awscdk.AssetStaging_BUNDLING_INPUT_DIR(), *awscdk.AssetStaging_BUNDLING_OUTPUT_DIR())...),
			Environment: &env,
			Local:       &hostBuild{repoRoot: props.RepoRoot, fn: fn, arch: arch},
		},
	})
}

// hostBuild is the CDK's local bundler for one function: it builds on this host when the host can, and
// otherwise declines, so that the CDK runs the container build.
type hostBuild struct {
	repoRoot string
	fn       lambdabuild.Function
	arch     lambdabuild.Arch
}

var _ awscdk.ILocalBundling = (*hostBuild)(nil)

// TryBundle implements awscdk.ILocalBundling. A build that fails for any reason other than a missing
// toolchain or a too new glibc fails the synth: the container build would fail the same way.
func (b *hostBuild) TryBundle(outputDir *string, _ *awscdk.BundlingOptions) *bool {
	root, err := filepath.Abs(b.repoRoot)
	if err == nil {
		err = lambdabuild.Build(context.Background(), root, b.fn, b.arch, *outputDir)
	}
	switch {
	case err == nil:
		return jsii.Bool(true)
	case errors.Is(err, lambdabuild.ErrNoLocalToolchain), errors.Is(err, lambdabuild.ErrGlibcTooNew):
		fmt.Fprintf(os.Stderr, "infra: building the %s Lambda in Docker (%s): %v\n", b.fn.Name, lambdabuild.DockerImage, err)
		return jsii.Bool(false)
	}
	panic(fmt.Errorf("building the %s Lambda: %w", b.fn.Name, err))
}
