// Command genbench measures what the generated code of a large contract
// costs (docs/BENCHMARKS.md): for a contract of the shape of Contract with
// n processes, the generated file's lines, the time of `theusgen
// generate`, and the time and memory of `go build` of the generated
// package.
//
// Each variant is a checkout of this repository (name=dir): its theusgen
// is built from it, and the generated package uses its runtime. Runs of
// the variants are interleaved, and each figure is the median of -runs
// runs, so that a busy machine weighs on every variant alike:
//
//	go run ./internal/gen/genbench -n 200,1000 -runs 3 -variant base=/tmp/base -variant new=.
//
// The build is cold for the generated package only: each run uses a new,
// empty GOCACHE, fills it with the package's dependencies (the standard
// library and the runtime, untimed), and then times `go build` of the
// package, wall time and the CPU time of its processes (which a busy
// machine disturbs less). The memory is the largest resident set of the processes that
// `go build` ran (ru_maxrss of the command, which Linux takes over its
// children): the compiler's, for a package this size.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type variant struct {
	name, root, bin string
}

type variants []variant

func (v *variants) String() string { return fmt.Sprint(*v) }

func (v *variants) Set(s string) error {
	name, root, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want name=dir, got %q", s)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	*v = append(*v, variant{name: name, root: abs})
	return nil
}

// sample is one measurement of a variant at one n.
type sample struct {
	generate, build time.Duration
	// cpu is the user and system time of the build's processes: on a
	// busy machine it varies less than the wall time.
	cpu   time.Duration
	rssKB int64
}

func main() {
	ns := flag.String("n", "200,1000", "numbers of processes, comma-separated")
	runs := flag.Int("runs", 3, "runs of each measurement, per variant")
	var vs variants
	flag.Var(&vs, "variant", "name=dir: a checkout of this repository to measure (repeatable; default cur=.)")
	dir := flag.String("write", "", "only write the module of the first -n into this directory, with this checkout's runtime, and exit")
	flag.Parse()
	log.SetFlags(0)
	if *dir != "" {
		n, err := strconv.Atoi(strings.Split(*ns, ",")[0])
		if err != nil {
			log.Fatalf("-n: %v", err)
		}
		root, err := filepath.Abs(".")
		if err != nil {
			log.Fatal(err)
		}
		write(*dir, root, n)
		return
	}
	if len(vs) == 0 {
		vs.Set("cur=.")
	}
	tmp, err := os.MkdirTemp("", "genbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for i := range vs {
		v := &vs[i]
		v.bin = filepath.Join(tmp, v.name, "theusgen")
		run(v.root, nil, "go", "build", "-o", v.bin, "./cmd/theusgen")
	}
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			log.Fatalf("-n: %v", err)
		}
		measureN(tmp, vs, n, *runs)
	}
}

func measureN(tmp string, vs variants, n, runs int) {
	lines := map[string][2]int{} // variant: lines at 0 and n processes
	dirs := map[string]string{}
	for _, v := range vs {
		for i, k := range []int{0, n} {
			dir := filepath.Join(tmp, v.name, strconv.Itoa(k))
			write(dir, v.root, k)
			run(dir, nil, v.bin, "generate", "-f", "big/contracts.yaml")
			src, err := os.ReadFile(filepath.Join(dir, "big", "theus_gen.go"))
			if err != nil {
				log.Fatal(err)
			}
			l := lines[v.name]
			l[i] = strings.Count(string(src), "\n")
			lines[v.name] = l
			dirs[v.name] = dir
		}
	}
	samples := map[string][]sample{}
	for r := range runs {
		for _, v := range vs {
			dir := dirs[v.name]
			var s sample
			start := time.Now()
			run(dir, nil, v.bin, "generate", "-f", "big/contracts.yaml")
			s.generate = time.Since(start)

			cache := filepath.Join(tmp, "gocache")
			os.RemoveAll(cache)
			env := []string{"GOCACHE=" + cache}
			deps := strings.Fields(output(dir, env, "go", "list", "-f", `{{join .Imports " "}}`, "./big"))
			run(dir, env, "go", append([]string{"build"}, deps...)...)
			// A different comment each run, in case the cache were shared.
			appendFile(filepath.Join(dir, "big", "helpers.go"), fmt.Sprintf("\n// run %d\n", r))
			start = time.Now()
			st := run(dir, env, "go", "build", "./big")
			s.build = time.Since(start)
			ru := st.SysUsage().(*syscall.Rusage)
			s.rssKB = ru.Maxrss
			s.cpu = st.UserTime() + st.SystemTime()
			samples[v.name] = append(samples[v.name], s)
		}
	}
	fmt.Printf("\n%d processes (median of %d runs; lines per process = (lines at n - lines at 0) / n)\n", n, runs)
	fmt.Printf("| variant | generated lines | lines per process | theusgen generate | go build (cold package) | its CPU (user+sys) | compiler max RSS |\n|---|---|---|---|---|---|---|\n")
	for _, v := range vs {
		l := lines[v.name]
		ss := samples[v.name]
		gen := median(ss, func(s sample) int64 { return int64(s.generate) })
		build := median(ss, func(s sample) int64 { return int64(s.build) })
		cpu := median(ss, func(s sample) int64 { return int64(s.cpu) })
		rss := median(ss, func(s sample) int64 { return s.rssKB })
		fmt.Printf("| %s | %d | %.1f | %v | %v | %v | %d MB |\n", v.name, l[1], float64(l[1]-l[0])/float64(max(n, 1)),
			time.Duration(gen).Round(time.Millisecond), time.Duration(build).Round(10*time.Millisecond),
			time.Duration(cpu).Round(10*time.Millisecond), rss/1024)
	}
}

func median(ss []sample, f func(sample) int64) int64 {
	xs := make([]int64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// write writes into dir a module that requires the repository at root
// through a replace directive, with package big: the contract of n
// processes and a file that implements nothing (the generated package
// builds on its own).
func write(dir, root string, n int) {
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		log.Fatal(err)
	}
	files := map[string]string{
		"go.mod": "module example.com/bench\n\ngo 1.26\n\nrequire github.com/theus-go/theus v0.0.0\n\n" +
			"replace github.com/theus-go/theus => " + root + "\n",
		"go.sum":             string(sum),
		"big/contracts.yaml": Contract(n),
		"big/helpers.go":     "package big\n",
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func appendFile(name, s string) {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

func command(dir string, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off"), env...)
	return cmd
}

func run(dir string, env []string, name string, args ...string) *os.ProcessState {
	cmd := command(dir, env, name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return cmd.ProcessState
}

func output(dir string, env []string, name string, args ...string) string {
	out, err := command(dir, env, name, args...).Output()
	if err != nil {
		log.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}
