package stack

import (
	"fmt"
	"regexp"
)

// Environments: `-c env=<name>` deploys the stack as LogPipeline-<name>, with the settings cdk.json lists
// under "environments" → <name> laid over the rest of the context (they win over cdk.json's top level and
// over -c alike: an environment's block is its definition). Two environments thus deploy side by side in one
// account: every name in the stack derives from the stack's name.

// envName is what an environment may be called: it becomes part of the stack's name.
var envName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,24}$`)

// StackName is the stack's name for the environment env ("" is the plain LogPipeline).
func StackName(env string) string {
	if env == "" {
		return "LogPipeline"
	}
	return "LogPipeline-" + env
}

// envContext reads a key from the environment's block first, then from the app's context.
type envContext struct {
	base     Context
	settings map[string]any
}

func (e envContext) TryGetContext(key *string) any {
	if v, ok := e.settings[*key]; ok {
		return v
	}
	return e.base.TryGetContext(key)
}

// withEnvironment resolves the env context key: it returns the environment's name and a Context that lays
// its settings over ctx. An env not listed under "environments" is an error naming it.
func withEnvironment(ctx Context) (string, Context, error) {
	key := "env"
	v := ctx.TryGetContext(&key)
	if v == nil || fmt.Sprint(v) == "" {
		return "", ctx, nil
	}
	name := fmt.Sprint(v)
	if !envName.MatchString(name) {
		return "", nil, fmt.Errorf("%w: env %q (want lowercase letters, digits and dashes, starting with a letter)", ErrInvalidProps, name)
	}
	envsKey := "environments"
	envs, _ := ctx.TryGetContext(&envsKey).(map[string]any)
	settings, ok := envs[name].(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("%w: env %q is not listed under \"environments\" in cdk.json", ErrInvalidProps, name)
	}
	return name, envContext{base: ctx, settings: settings}, nil
}
