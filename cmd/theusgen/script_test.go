package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/theus-go/theus/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"theusgen": func() {
			os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs the CLI scripts in testdata/script: what a user types and
// what they see, exit codes included.
//
// Scripts that run the go command (theusgen -tags does, to load a package)
// find this repository in $THEUS_ROOT, for a replace directive and its
// go.sum. They share this go command's build and module caches and its
// module proxy, so that they pass on a fresh machine whose module cache
// holds only what the repository's own build needed (init_builds resolves
// a new module's whole graph, which needs more: the go.mod files of test
// dependencies of dependencies).
func TestScripts(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "env", "-json", "GOCACHE", "GOMODCACHE", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOFLAGS").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	var goenv map[string]string
	if err := json.Unmarshal(out, &goenv); err != nil {
		t.Fatalf("go env printed %q: %v", out, err)
	}
	theusgen, err := exec.LookPath("theusgen") // installed by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"sarif-shape": sarifShape},
		Setup: func(env *testscript.Env) error {
			env.Setenv("THEUSGEN", theusgen) // for go vet -vettool
			for k, v := range goenv {
				env.Setenv(k, v)
			}
			for k, v := range map[string]string{
				"THEUS_ROOT":  root,
				"GOPROXY":     goproxy(goenv["GOPROXY"]),
				"GOFLAGS":     strings.TrimSpace("-mod=mod " + goenv["GOFLAGS"]),
				"GOWORK":      "off",
				"GOTOOLCHAIN": "local",
			} {
				env.Setenv(k, v)
			}
			return nil
		},
	})
}

// goproxy returns proxy list for the scripts: the go command's own, each
// entry falling back to the next on any error and the last to "off". Some
// proxies (and the network filters in front of them) answer 403 rather than
// 404 for a module path that does not exist, such as the longer candidates
// the go command tries first for github.com/theus-go/theus/cmd/theusgen;
// as "off" those read as "not found", and the lookup goes on to the
// replaced module, which needs no network.
func goproxy(list string) string {
	var out []string
	for _, p := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '|' }) {
		if p != "off" {
			out = append(out, p)
		}
	}
	return strings.Join(append(out, "off"), "|")
}

// sarifShape checks that a file is a SARIF 2.1.0 log: the top-level
// shape that code-scanning services read, one run by theusgen, and the
// given number of results, each with a rule, a message and a location.
//
//	sarif-shape FILE RESULTS
func sarifShape(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sarif-shape FILE RESULTS")
	}
	var log struct {
		Schema  *string `json:"$schema"`
		Version string  `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID  string `json:"ruleId"`
				Level   string `json:"level"`
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &log); err != nil {
		ts.Fatalf("%s is not JSON: %v", args[0], err)
	}
	switch {
	case log.Schema == nil || !strings.Contains(*log.Schema, "sarif"):
		ts.Fatalf("$schema missing or not SARIF")
	case log.Version != "2.1.0":
		ts.Fatalf("version %q, want 2.1.0", log.Version)
	case len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "theusgen" || len(log.Runs[0].Tool.Driver.Rules) == 0:
		ts.Fatalf("want one run by tool theusgen with rules, got %+v", log.Runs)
	}
	want, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("results: %v", err)
	}
	results := log.Runs[0].Results
	if results == nil || len(results) != want {
		ts.Fatalf("%d results (nil: %v), want %d", len(results), results == nil, want)
	}
	for _, r := range results {
		if r.RuleID == "" || r.Message.Text == "" || (r.Level != "error" && r.Level != "warning") ||
			len(r.Locations) != 1 || r.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" ||
			r.Locations[0].PhysicalLocation.Region.StartLine < 1 {
			ts.Fatalf("incomplete result %+v", r)
		}
	}
}
