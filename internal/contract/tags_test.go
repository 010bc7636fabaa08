package contract

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestBadTags loads every package under testdata/badtags and compares the
// errors with those in testdata/badtags/CASE.err, where file names are
// relative to the package's directory; go test -update rewrites them.
func TestBadTags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	ents, err := os.ReadDir("testdata/badtags")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range ents {
		if e.IsDir() {
			cases = append(cases, e.Name())
		}
	}
	if len(cases) < 8 {
		t.Fatalf("found %d bad packages, want at least 8", len(cases))
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("testdata", "badtags", name)
			m, err := LoadTags(context.Background(), dir)
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("LoadTags returned error %v (%T), want an ErrorList", err, err)
			}
			if m != nil {
				t.Error("LoadTags returned a Model along with errors")
			}
			var lines []string
			for i, e := range list {
				rel, ok := strings.CutPrefix(e.Pos.File, dir+string(filepath.Separator))
				if !ok || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Errorf("bad position %v in %q", e.Pos, e.Error())
				}
				if i > 0 && before(e.Pos, list[i-1].Pos) {
					t.Errorf("errors not sorted: %q after %q", e.Error(), list[i-1].Error())
				}
				lines = append(lines, filepath.ToSlash(rel)+e.Error()[len(e.Pos.File):])
			}
			checkErrFile(t, dir+".err", strings.Join(lines, "\n")+"\n")
		})
	}
}

// checkErrFile compares the errors got with those in errFile, or with
// -update writes them there.
func checkErrFile(t *testing.T, errFile, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(errFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(errFile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

// TestTagsModelIsYAMLModel checks the promise of LoadTags: examples/tags
// declares the quickstart's contract in Go, and gives the Model that the
// root contracts.yaml gives, but for positions and for what says where the
// contract comes from.
func TestTagsModelIsYAMLModel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	src, err := os.ReadFile("../../contracts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse("contracts.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadTags(context.Background(), "../../examples/tags")
	if err != nil {
		t.Fatal(err)
	}
	if !got.DeclaredInGo || got.Source != "github.com/theus-go/theus/examples/tags" || got.Package != "main" || got.Output != DefaultOutput {
		t.Errorf("got source %q, package %q, output %q, DeclaredInGo %v", got.Source, got.Package, got.Output, got.DeclaredInGo)
	}
	opts := cmp.Options{
		cmpopts.IgnoreTypes(Pos{}),
		cmpopts.IgnoreFields(Model{}, "Source", "Package", "Output", "DeclaredInGo"),
		cmpopts.IgnoreFields(Process{}, "KeyPos"), // where keys are written: Go has other places
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("models differ (-yaml +tags):\n%s", diff)
	}
}

// TestTagsStaleGenerated loads a package whose generated files are broken
// (one does not parse, one is of another package) and whose other code
// refers to names that only the generated file declares.
func TestTagsStaleGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/goodtags/stale/model.go")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"go.mod":       "module example.com/stale\n\ngo 1.26\n",
		"model.go":     string(src),
		"model_gen.go": GeneratedMarker + "from example.com/stale. DO NOT EDIT.\n\npackage stale\n\nthis is { not Go\n",
		"theus_gen.go": GeneratedMarker + "from example.com/stale. DO NOT EDIT.\n\npackage other\n\ntype State int\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := LoadTags(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Processes) != 1 || m.Processes[0].Name != "bump" || len(m.State) != 1 || m.Output != "model_gen.go" {
		t.Errorf("got %d processes, %d state fields, output %q", len(m.Processes), len(m.State), m.Output)
	}
}

func TestSnakeName(t *testing.T) {
	for in, want := range map[string]string{
		"UpdateUserEmail": "update_user_email",
		"HTTPStatus":      "http_status",
		"UserV2":          "user_v2",
		"Base64Encode":    "base64_encode",
		"ID":              "id",
		"MemberID":        "member_id",
		"X":               "x",
	} {
		if got := SnakeName(in); got != want {
			t.Errorf("SnakeName(%q) = %q, want %q", in, got, want)
		}
		if back := GoName(want); back != in {
			t.Errorf("GoName(%q) = %q, want %q", want, back, in)
		}
	}
}

func TestLookupTag(t *testing.T) {
	tag := `json:"id,omitempty" theus:"in,path=domain.user" x:"a\"b"`
	v, off, exact, ok := lookupTag(tag, "theus")
	if !ok || v != "in,path=domain.user" || tag[off:off+len(v)] != v || !exact {
		t.Errorf("theus: %q at %d (exact %v, ok %v)", v, off, exact, ok)
	}
	if v, _, exact, ok := lookupTag(tag, "x"); !ok || v != `a"b` || exact {
		t.Errorf("x: %q (exact %v, ok %v)", v, exact, ok)
	}
	if _, _, _, ok := lookupTag(tag, "yaml"); ok {
		t.Error("found a key that is not there")
	}
	s := span{text: v, pos: Pos{File: "f.go", Line: 3, Col: 10}, exact: true}
	parts := s.split(',')
	if len(parts) != 2 || parts[1].text != "path=domain.user" || parts[1].pos.Col != 13 {
		t.Errorf("split: %+v", parts)
	}
}
