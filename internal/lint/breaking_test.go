package lint_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/internal/lint"
)

var updateBreaking = flag.Bool("update", false, "rewrite the golden files of testdata/breaking")

// TestBreakingGolden compares each pair of contracts of testdata/breaking
// both ways: a.yaml then b.yaml (golden a_b), and b.yaml then a.yaml
// (golden b_a). An allow file lists acknowledged paths, one a line.
func TestBreakingGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/breaking/*")
	if err != nil || len(dirs) < 10 {
		t.Fatalf("%d cases, %v", len(dirs), err)
	}
	for _, dir := range dirs {
		var allow []string
		if b, err := os.ReadFile(filepath.Join(dir, "allow")); err == nil {
			allow = strings.Fields(string(b))
		}
		for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}} {
			t.Run(filepath.Base(dir)+"/"+pair[0]+"_"+pair[1], func(t *testing.T) {
				old, new := parse(t, dir, pair[0]), parse(t, dir, pair[1])
				var got strings.Builder
				for _, f := range lint.Breaking(old, new, allow) {
					fmt.Fprintf(&got, "%s:%d:%d: %s [%s] %s\n", f.File, f.Line, f.Col, f.Severity, f.Code, f.Message)
				}
				golden := filepath.Join(dir, pair[0]+"_"+pair[1]+".golden")
				if *updateBreaking {
					if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if got.String() != string(want) {
					t.Errorf("got\n%s\nwant\n%s", got.String(), want)
				}
			})
		}
	}
}

func parse(t *testing.T, dir, name string) *contract.Model {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := contract.Parse(name+".yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
