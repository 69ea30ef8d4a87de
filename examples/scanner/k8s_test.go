package main

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// kubernetesModule is the Kubernetes release whose OpenAPI documents
// (api/openapi-spec/v3 in its source) the manifests are validated
// against.
const kubernetesModule = "k8s.io/kubernetes@v1.37.2"

// needModule fetches a module through the Go module proxy and returns
// its directory; it skips (fails under NTPCTL_REAL_PEERS=1) when that
// cannot be done.
func needModule(t *testing.T, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	var info struct{ Dir, Error string }
	if err == nil {
		err = json.Unmarshal(out, &info)
	}
	if err != nil || info.Dir == "" {
		msg := "go mod download " + mod + ": " + info.Error
		if err != nil {
			msg += " " + err.Error()
		}
		if os.Getenv("NTPCTL_REAL_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return info.Dir
}

// strictSchema makes a standalone JSON Schema of one kind from a
// Kubernetes OpenAPI v3 document: the document's schemas under a $ref to
// the kind's, every object with properties closed to others (what
// kubeconform's "strict" schemas are), so that a misspelt field fails.
func strictSchema(t *testing.T, openapi, component string) []byte {
	t.Helper()
	b, err := os.ReadFile(openapi)
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Contains(t, doc.Components.Schemas, component)
	var closeObjects func(v any)
	closeObjects = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok && len(props) > 0 {
				if _, set := v["additionalProperties"]; !set {
					v["additionalProperties"] = false
				}
			}
			for _, x := range v {
				closeObjects(x)
			}
		case []any:
			for _, x := range v {
				closeObjects(x)
			}
		}
	}
	closeObjects(doc.Components.Schemas)
	out, err := json.Marshal(map[string]any{
		"$ref":       "#/components/schemas/" + component,
		"components": map[string]any{"schemas": doc.Components.Schemas},
	})
	require.NoError(t, err)
	return out
}

// TestKubernetesManifests validates k8s/ against Kubernetes' schemas
// with kubeconform (go tool kubeconform, in -strict mode), checks that a
// misspelt field fails it, and checks what the Job must be for the
// scanner: Indexed, retried per index, non-root, no added capabilities.
// No cluster is at hand here: the Job itself is not run.
func TestKubernetesManifests(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	dir := needModule(t, kubernetesModule)
	schemas := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(schemas, "job-batch-v1.json"),
		strictSchema(t, filepath.Join(dir, "api/openapi-spec/v3/apis__batch__v1_openapi.json"), "io.k8s.api.batch.v1.Job"), 0o644))
	kubeconform := func(files ...string) (string, error) {
		args := append([]string{"tool", "kubeconform", "-strict", "-summary", "-schema-location",
			filepath.Join(schemas, "{{ .ResourceKind }}{{ .KindSuffix }}.json")}, files...)
		out, err := exec.Command("go", args...).CombinedOutput()
		return string(out), err
	}
	manifests, err := filepath.Glob("k8s/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, manifests)
	out, err := kubeconform(manifests...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Invalid: 0, Errors: 0, Skipped: 0", out)

	// The validation is not vacuous: a misspelt field fails, and a
	// wrong type.
	job, err := os.ReadFile("k8s/job.yaml")
	require.NoError(t, err)
	for _, bad := range []struct{ from, to string }{
		{"completionMode: Indexed", "completionsMode: Indexed"},
		{"completions: 12", "completions: twelve"},
		{"runAsNonRoot: true", "runAsNonroot: true"},
	} {
		f := filepath.Join(t.TempDir(), "job.yaml")
		require.NoError(t, os.WriteFile(f, []byte(strings.Replace(string(job), bad.from, bad.to, 1)), 0o644))
		out, err := kubeconform(f)
		assert.Error(t, err, "%s passed: %s", bad.to, out)
		assert.Contains(t, out, "is invalid", bad.to)
	}

	var j struct {
		Kind string
		Spec struct {
			CompletionMode       string `yaml:"completionMode"`
			Completions          int
			Parallelism          int
			BackoffLimitPerIndex *int `yaml:"backoffLimitPerIndex"`
			Template             struct {
				Spec struct {
					RestartPolicy   string `yaml:"restartPolicy"`
					SecurityContext struct {
						RunAsNonRoot bool `yaml:"runAsNonRoot"`
					} `yaml:"securityContext"`
					Containers []struct {
						Args            []string
						SecurityContext struct {
							AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
							Capabilities             struct {
								Add, Drop []string
							}
						} `yaml:"securityContext"`
					}
				}
			}
		}
	}
	require.NoError(t, yaml.Unmarshal(job, &j))
	assert.Equal(t, "Job", j.Kind)
	assert.Equal(t, "Indexed", j.Spec.CompletionMode)
	assert.Positive(t, j.Spec.Completions)
	assert.NotNil(t, j.Spec.BackoffLimitPerIndex)
	assert.Equal(t, "Never", j.Spec.Template.Spec.RestartPolicy, "backoffLimitPerIndex needs it")
	assert.True(t, j.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
	require.Len(t, j.Spec.Template.Spec.Containers, 1)
	c := j.Spec.Template.Spec.Containers[0]
	assert.Empty(t, c.SecurityContext.Capabilities.Add, "no added capabilities: ordinary UDP sockets")
	assert.Equal(t, []string{"ALL"}, c.SecurityContext.Capabilities.Drop)
	require.NotNil(t, c.SecurityContext.AllowPrivilegeEscalation)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	// The worker's flags are the scanner's.
	opts, err := parseFlags(append(c.Args, "-progress", "none"), os.Stderr)
	require.NoError(t, err)
	assert.NotEmpty(t, opts.worker)
	assert.NotEmpty(t, opts.runID)
}

// TestDockerfile builds the scanner as the Dockerfile does and checks
// that it is static (it runs on an empty base image) and that the image
// runs it as a non-root user. No container engine is at hand here: the
// image itself is not built.
func TestDockerfile(t *testing.T) {
	if testing.Short() || runtime.GOOS != "linux" {
		t.Skip("builds the scanner")
	}
	b, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	var build []string
	user := ""
	for _, l := range strings.Split(string(b), "\n") {
		if cmd, ok := strings.CutPrefix(l, "RUN CGO_ENABLED=0 go build "); ok {
			build = strings.Fields(cmd)
		}
		if u, ok := strings.CutPrefix(l, "USER "); ok {
			user = u
		}
	}
	require.NotEmpty(t, build, "the Dockerfile's go build line")
	assert.NotEqual(t, "", user)
	assert.NotContains(t, []string{"root", "0", "0:0"}, user)
	// The same build, into the test's directory, from the module's root.
	bin := filepath.Join(t.TempDir(), "scanner")
	for i, a := range build {
		if a == "-o" && i+1 < len(build) {
			build[i+1] = bin
		}
	}
	cmd := exec.Command("go", append([]string{"build"}, build...)...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a dynamically linked binary")
	}
	libs, _ := f.ImportedLibraries()
	assert.Empty(t, libs)
	v, err := exec.Command(bin, "-version").CombinedOutput()
	require.NoError(t, err, string(v))
	info, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	require.NoError(t, err, string(info))
	assert.Contains(t, string(info), "-tags=nats", "built with NATS")
	assert.Contains(t, string(info), "CGO_ENABLED=0")
}
