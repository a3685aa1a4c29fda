package stack_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/infra/stack"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestMwaaPolicy checks the managed policy an MWAA execution role attaches: a real managed policy resource
// with its ARN as an output, exactly the actions the DAG's operator needs, each statement scoped to this
// stack's task definition family, cluster, roles and log group, and no cdk-nag finding.
func TestMwaaPolicy(t *testing.T) {
	p, tmpl := synth(t, nil)
	assertNoNagFindings(t, p)

	policies := resources(tmpl, "AWS::IAM::ManagedPolicy")
	if len(policies) != 1 {
		t.Fatalf("%d managed policies, want 1", len(policies))
	}
	var id string
	var doc map[string]any
	for k, r := range policies {
		id = k
		doc, _ = props(r)["PolicyDocument"].(map[string]any)
		if roles := props(r)["Roles"]; roles != nil {
			t.Errorf("the policy is attached to %v in the stack; the MWAA role is not the stack's to change", roles)
		}
	}
	out := tmpl.ToJSON()
	outputs, _ := (*out)["Outputs"].(map[string]any)
	arn, _ := outputs["MwaaPolicyArn"].(map[string]any)
	if got := fmt.Sprint(arn["Value"]); got != "map[Ref:"+id+"]" {
		t.Errorf("output MwaaPolicyArn = %s, want a Ref to %s", got, id)
	}

	logical := func(typ, contains string) string {
		t.Helper()
		for k := range resources(tmpl, typ) {
			if strings.Contains(k, contains) {
				return k
			}
		}
		t.Fatalf("no %s whose id contains %q", typ, contains)
		return ""
	}
	if td := resources(tmpl, "AWS::ECS::TaskDefinition")[logical("AWS::ECS::TaskDefinition", "ReaderTask")]; props(td)["Family"] != *p.TaskDefinition.Family() {
		t.Fatalf("task definition family %v, want %s", props(td)["Family"], *p.TaskDefinition.Family())
	}
	cluster := logical("AWS::ECS::Cluster", "Cluster")
	taskRole := logical("AWS::IAM::Role", "ReaderTaskTaskRole")
	execRole := logical("AWS::IAM::Role", "ReaderTaskExecutionRole")
	logGroup := logical("AWS::Logs::LogGroup", "ReaderLogs")

	// Each statement: its actions, and what its resources and conditions must (and must not) name.
	type want struct {
		actions   []string
		resources []string // substrings of the statement's resources, all required
		condition string   // substring of the statement's condition, "" for none
	}
	wants := map[string]want{
		"RunReaderTask": {[]string{"ecs:RunTask"},
			[]string{`:task-definition/` + *p.TaskDefinition.Family() + `:*`}, `ecs:cluster:map[Fn::GetAtt:[` + cluster + ` Arn]]`},
		"TagReaderTask": {[]string{"ecs:TagResource"},
			[]string{`:task/`, `Ref:` + cluster, `/*`}, `ecs:CreateAction:RunTask`},
		"WatchReaderTasks": {[]string{"ecs:DescribeTasks", "ecs:StopTask"},
			[]string{`:task/`, `Ref:` + cluster, `/*`}, ""},
		"FindReaderTasks": {[]string{"ecs:ListTasks"},
			[]string{`*`}, `ecs:cluster:map[Fn::GetAtt:[` + cluster + ` Arn]]`},
		"PassReaderRoles": {[]string{"iam:PassRole"},
			[]string{taskRole + ` Arn`, execRole + ` Arn`}, `iam:PassedToService:ecs-tasks.amazonaws.com`},
		"ReadReaderLogs": {[]string{"logs:GetLogEvents"},
			[]string{`:log-group:`, `Ref:` + logGroup, `:log-stream:` + stack.ContainerName + `/*`}, ""},
	}
	stmts, _ := doc["Statement"].([]any)
	var all []string
	for _, s := range stmts {
		st, _ := s.(map[string]any)
		sid, _ := st["Sid"].(string)
		w, ok := wants[sid]
		if !ok {
			t.Errorf("unexpected statement %q: %v", sid, st)
			continue
		}
		delete(wants, sid)
		if st["Effect"] != "Allow" {
			t.Errorf("%s: effect %v", sid, st["Effect"])
		}
		actions := strs(st["Action"])
		all = append(all, actions...)
		if !slices.Equal(actions, w.actions) {
			t.Errorf("%s: actions %v, want %v", sid, actions, w.actions)
		}
		res := fmt.Sprint(st["Resource"])
		for _, sub := range w.resources {
			if !strings.Contains(res, sub) {
				t.Errorf("%s: resource %s does not name %q", sid, res, sub)
			}
		}
		if sid == "FindReaderTasks" && res != "*" {
			t.Errorf("%s: resource %s, want * (limited by the cluster condition)", sid, res)
		}
		cond := fmt.Sprint(st["Condition"])
		if w.condition == "" && st["Condition"] != nil {
			t.Errorf("%s: unexpected condition %s", sid, cond)
		}
		if w.condition != "" && !strings.Contains(cond, w.condition) {
			t.Errorf("%s: condition %s does not contain %q", sid, cond, w.condition)
		}
	}
	for sid := range wants {
		t.Errorf("statement %s missing", sid)
	}
	sort.Strings(all)
	exported := slices.Clone(stack.MwaaPolicyActions)
	sort.Strings(exported)
	if !slices.Equal(all, exported) {
		t.Errorf("the policy's actions %v differ from stack.MwaaPolicyActions %v", all, exported)
	}

	// Both READMEs name exactly these actions where they tell the user to attach the policy.
	for _, readme := range []string{"infra/README.md", "dags/README.md"} {
		got := readmePolicyActions(t, filepath.Join(stacktest.RepoRoot(t), readme))
		if !slices.Equal(got, exported) {
			t.Errorf("%s names %v for the MWAA policy, the stack grants %v", readme, got, exported)
		}
	}
}

// readmePolicyActions returns the sorted, distinct `ecs:…`, `iam:…` and `logs:…` actions of the paragraph
// (or list item) of a README that tells the user to attach MwaaPolicyArn.
func readmePolicyActions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	action := regexp.MustCompile("`((?:ecs|iam|logs):[A-Za-z]+)`")
	var found []string
	for _, para := range strings.Split(string(b), "\n\n") {
		for _, item := range strings.Split(para, "\n* ") {
			if !strings.Contains(item, "MwaaPolicyArn") || !strings.Contains(item, "execution") {
				continue
			}
			for _, m := range action.FindAllStringSubmatch(item, -1) {
				if !slices.Contains(found, m[1]) {
					found = append(found, m[1])
				}
			}
		}
	}
	if len(found) == 0 {
		t.Fatalf("%s: no paragraph names MwaaPolicyArn with the execution role's actions", path)
	}
	sort.Strings(found)
	return found
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}
