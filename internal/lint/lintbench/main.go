// Command lintbench measures `theusgen lint` against `go vet` on a
// generated package with many processes (docs/BENCHMARKS.md).
//
// It writes, in a temporary directory, a module that requires this
// repository through a replace directive, a contracts.yaml with -n
// processes, the generated code and an implementation of every process
// (string handling, a collection, an emitted topic), then times both
// commands -runs times after one warm-up run each, and prints the median
// wall time of each:
//
//	go build -o bin/theusgen ./cmd/theusgen
//	go run ./internal/lint/lintbench -n 200 -theusgen bin/theusgen
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 200, "number of processes")
	runs := flag.Int("runs", 5, "timed runs of each command")
	theusgen := flag.String("theusgen", "bin/theusgen", "the theusgen binary")
	keep := flag.Bool("keep", false, "keep the generated module and print its directory")
	flag.Parse()
	log.SetFlags(0)

	root, err := os.Getwd()
	if err != nil {
		log.Fatal(err)
	}
	bin, err := filepath.Abs(*theusgen)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "lintbench")
	if err != nil {
		log.Fatal(err)
	}
	if *keep {
		fmt.Println("module in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := Write(dir, root, *n); err != nil {
		log.Fatal(err)
	}
	run(dir, bin, "generate", "-f", "big/contracts.yaml")

	// go vet caches its result per package: each run edits the package
	// first (as a developer or CI does between runs), so that both commands
	// check it again; the dependencies stay in the build cache.
	edits := 0
	edit := func() {
		edits++
		f, err := os.OpenFile(filepath.Join(dir, "big", "helpers.go"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(f, "\n// edit %d\n", edits)
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
	vet := measure(*runs, edit, func() { run(dir, "go", "vet", "./big") })
	lint := measure(*runs, edit, func() { run(dir, bin, "lint", "./big") })
	vettool := measure(*runs, edit, func() { run(dir, "go", "vet", "-vettool="+bin, "./big") })
	fmt.Printf("package with %d processes, median of %d runs after a warm-up, the package edited before each:\n", *n, *runs)
	fmt.Printf("  go vet ./big                      %v\n", vet.Round(time.Millisecond))
	fmt.Printf("  theusgen lint ./big               %v (%.2fx go vet)\n", lint.Round(time.Millisecond), float64(lint)/float64(vet))
	fmt.Printf("  go vet -vettool=theusgen ./big    %v (%.2fx go vet)\n", vettool.Round(time.Millisecond), float64(vettool)/float64(vet))
}

// measure runs f once to warm caches, then runs times, each after
// prepare, and returns the median duration of f.
func measure(runs int, prepare, f func()) time.Duration {
	prepare()
	f()
	var ds []time.Duration
	for range runs {
		prepare()
		start := time.Now()
		f()
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func run(dir, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Write writes the benchmark module into dir: go.mod and go.sum (this
// repository, at root, replaces the module), and package big with a
// contract of n processes and their implementation.
func Write(dir, root string, n int) error {
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return err
	}
	files := map[string]string{
		"go.mod": "module example.com/bench\n\ngo 1.26\n\nrequire github.com/theus-go/theus v0.0.0\n\n" +
			"replace github.com/theus-go/theus => " + root + "\n",
		"go.sum":             string(sum),
		"big/contracts.yaml": contract(n),
		"big/processes.go":   processes(n),
		"big/helpers.go":     helpers,
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func contract(n int) string {
	var b strings.Builder
	b.WriteString(`version: 1
package: big
types:
  Account: {fields: {id: string, owner: string, balance: int64, tags: "[]string"}}
  Changed: {fields: {id: string, field: string, value: string}}
state:
  domain:
    accounts: {map: Account, key: string}
`)
	for i := range n {
		fmt.Fprintf(&b, "    counter_%d: int64\n", i)
	}
	b.WriteString(`  global:
    max_len: int
topics:
  account.changed: {payload: Changed, key: id}
processes:
`)
	for i := range n {
		fmt.Fprintf(&b, `  process_%d:
    args: {id: string, value: string}
    inputs: [domain.accounts, domain.counter_%d, global.max_len]
    outputs: [domain.accounts, domain.counter_%d]
    emits: [account.changed]
    errors: [not_found, too_long]
    result: string
`, i, i, i)
	}
	return b.String()
}

func processes(n int) string {
	var b strings.Builder
	b.WriteString(`package big

import (
	"context"
	"fmt"
	"strings"
)

// app implements the generated Processes.
type app struct{}

var _ Processes = app{}
`)
	for i := range n {
		fmt.Fprintf(&b, `
func (app) Process%d(_ context.Context, in Process%dIn, out *Process%dOut) error {
	v, ok := in.Accounts().Get(in.Args.ID)
	if !ok {
		return ErrNotFound
	}
	value := normalize(in.Args.Value)
	if limit := in.MaxLen(); limit > 0 && len(value) > limit {
		return fmt.Errorf("value %%q: %%w", value, ErrTooLong)
	}
	a := v.Clone()
	a.Owner = value
	a.Tags = withTag(a.Tags, "p%d")
	out.Accounts().Put(a.ID, a)
	out.SetCounter%d(in.Counter%d() + 1)
	out.EmitAccountChanged(Changed{ID: a.ID, Field: "owner", Value: strings.ToUpper(value)})
	out.SetResult(describe(a))
	return nil
}
`, i, i, i, i, i, i)
	}
	return b.String()
}

const helpers = `package big

import (
	"fmt"
	"slices"
	"strings"
)

func normalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func withTag(tags []string, tag string) []string {
	if slices.Contains(tags, tag) {
		return tags
	}
	tags = append(tags, tag)
	slices.Sort(tags)
	return tags
}

func describe(a Account) string {
	return fmt.Sprintf("%s (%s): %d, %s", a.ID, a.Owner, a.Balance, strings.Join(a.Tags, ","))
}
`
