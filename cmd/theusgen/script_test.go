package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
// go.sum, and take every module from the local module cache.
func TestScripts(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	dirs := strings.Fields(string(out))
	if len(dirs) != 2 {
		t.Fatalf("go env printed %q", out)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			for k, v := range map[string]string{
				"THEUS_ROOT":  root,
				"GOCACHE":     dirs[0],
				"GOMODCACHE":  dirs[1],
				"GOFLAGS":     "-mod=mod",
				"GOPROXY":     "off",
				"GOWORK":      "off",
				"GOTOOLCHAIN": "local",
			} {
				env.Setenv(k, v)
			}
			return nil
		},
	})
}
