// Package runner is bench-peers: it builds the implementation binaries
// once, runs every scenario on every implementation for several
// repetitions, writes each run's JSON line and prints the tables.
package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theus-go/theus/bench/peers/workload"
)

// An impl is an implementation binary, a package of bench/peers/cmd.
type impl struct {
	name   string
	theus  bool // Theus, on the left of the ratios; the others are peers
	server bool // uses the PostgreSQL server
}

// Impls are the implementations bench-peers knows, in their default order.
var Impls = []impl{
	{name: "theus-sqlite", theus: true},
	{name: "theus-memory", theus: true},
	{name: "theus-postgres", theus: true, server: true},
	{name: "pgx-outbox", server: true},
	{name: "watermill", server: true},
}

func names(impls []impl) []string {
	var n []string
	for _, i := range impls {
		n = append(n, i.name)
	}
	return n
}

func lookup(name string) (impl, bool) {
	i := slices.IndexFunc(Impls, func(i impl) bool { return i.name == name })
	if i < 0 {
		return impl{}, false
	}
	return Impls[i], true
}

// A scenario is a set of flags every implementation runs with.
type scenario struct {
	name, title string
	args        []string
	kind        kind
}

type kind int

const (
	withRelay kind = iota
	noRelay
	drain
)

// prefillC is the producers that fill a drain's backlog: the fill is not
// what is measured, so it goes as fast as it can.
const prefillC = 64

// scenarios are the scenarios whose names -scenarios lists; "drain" stands
// for one drain per size of -drain.
func scenarios(list []string, drains []int) ([]scenario, error) {
	var out []scenario
	for _, n := range list {
		switch n {
		case "c8":
			out = append(out, scenario{n, "C=8, relay running", []string{"-c", "8", "-relay=true"}, withRelay})
		case "c8-norelay":
			out = append(out, scenario{n, "C=8, relay not running", []string{"-c", "8", "-relay=false"}, noRelay})
		case "c64":
			out = append(out, scenario{n, "C=64, relay running", []string{"-c", "64", "-relay=true"}, withRelay})
		case "drain":
			for _, d := range drains {
				out = append(out, scenario{
					"drain-" + strconv.Itoa(d), fmt.Sprintf("drain of a %d-event backlog", d),
					[]string{"-c", strconv.Itoa(prefillC), "-prefill", strconv.Itoa(d)}, drain,
				})
			}
		default:
			return nil, fmt.Errorf("unknown scenario %q (known: c8, c8-norelay, c64, drain)", n)
		}
	}
	return out, nil
}

type config struct {
	reps      int
	out       string
	impls     []impl
	scenarios []scenario
	duration  time.Duration
	dsn, dir  string
	timeout   time.Duration
}

func parse(args []string, stderr io.Writer) (config, error) {
	var (
		c                              config
		impls, scenarioNames, drainStr string
	)
	fs := flag.NewFlagSet("bench-peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.reps, "reps", 3, "repetitions of every scenario on every implementation")
	fs.StringVar(&c.out, "out", "bench-peers.jsonl", "file for the raw JSON line of every run")
	fs.StringVar(&impls, "impls", strings.Join(names(Impls), ","), "implementations to run, comma-separated")
	fs.StringVar(&scenarioNames, "scenarios", "c8,c8-norelay,c64,drain", "scenarios to run, comma-separated: c8, c8-norelay, c64, drain")
	fs.StringVar(&drainStr, "drain", "20000,100000", "backlog sizes of the drain scenario, comma-separated")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long producers commit in the c8, c8-norelay and c64 scenarios")
	fs.StringVar(&c.dsn, "dsn", workload.DSN(), "PostgreSQL of the server-based implementations (default $THEUS_TEST_POSTGRES)")
	fs.StringVar(&c.dir, "dir", "", "directory for theus-sqlite's files (default the system's temp dir)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "kill a run that takes longer")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.reps < 1 {
		return config{}, errors.New("-reps must be at least 1")
	}
	for _, n := range split(impls) {
		i, ok := lookup(n)
		if !ok {
			return config{}, fmt.Errorf("unknown implementation %q (known: %s)", n, strings.Join(names(Impls), ", "))
		}
		c.impls = append(c.impls, i)
	}
	var drains []int
	for _, s := range split(drainStr) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return config{}, fmt.Errorf("-drain: %q is not a positive count", s)
		}
		drains = append(drains, n)
	}
	var err error
	if c.scenarios, err = scenarios(split(scenarioNames), drains); err != nil {
		return config{}, err
	}
	if len(c.impls) == 0 || len(c.scenarios) == 0 {
		return config{}, errors.New("nothing to run: -impls and -scenarios are empty")
	}
	return c, nil
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Main runs bench-peers with args and returns its exit status: 2 for a
// usage error, 1 if anything failed (the tables still show what ran).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "bench-peers:", err)
		}
		return 2
	}
	if err := run(ctx, cfg, args, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench-peers:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	bin, err := os.MkdirTemp("", "bench-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	if err := build(ctx, bin, cfg.impls, stderr); err != nil {
		return err
	}
	env := describe(ctx, cfg)
	env.command = strings.Join(append([]string{"bench-peers"}, args...), " ")

	out, err := os.Create(cfg.out)
	if err != nil {
		return err
	}
	defer out.Close()
	results := map[string][]workload.Result{} // by scenario, then implementation, in run order
	var failed []string
	for rep := range cfg.reps {
		order := rotate(cfg.impls, rep)
		for _, sc := range cfg.scenarios {
			for _, impl := range order {
				label := fmt.Sprintf("[rep %d/%d] %s %s", rep+1, cfg.reps, sc.name, impl.name)
				line, res, err := runOne(ctx, cfg, bin, impl.name, sc)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fmt.Fprintf(stderr, "%s: FAILED: %v\n", label, err)
					failed = append(failed, sc.name+" "+impl.name)
					continue
				}
				if _, err := out.Write(append(line, '\n')); err != nil {
					return err
				}
				results[sc.name] = append(results[sc.name], res)
				fmt.Fprintf(stderr, "%s: %s\n", label, progress(sc.kind, res))
			}
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	report(stdout, env, cfg, results)
	fmt.Fprintf(stderr, "raw results: %s\n", cfg.out)
	if len(failed) > 0 {
		return fmt.Errorf("%d runs failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

// rotate is impls starting at the rep-th, so that no implementation always
// runs first (or right after the same neighbour).
func rotate[T any](impls []T, rep int) []T {
	k := rep % len(impls)
	return append(slices.Clone(impls[k:]), impls[:k]...)
}

// build compiles the implementation binaries into dir, once: go run per
// run would measure the compiler's leftovers too.
func build(ctx context.Context, dir string, impls []impl, stderr io.Writer) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, i := range impls {
		pkg := "./cmd/" + i.name
		if _, err := os.Stat(pkg); err != nil {
			return fmt.Errorf("no %s here: run bench-peers in bench/peers (make bench-peers does)", pkg)
		}
		args = append(args, pkg)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}

// runOne runs one implementation binary on one scenario and returns its
// JSON line, decoded too.
func runOne(ctx context.Context, cfg config, bin, impl string, sc scenario) ([]byte, workload.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	args := append(slices.Clone(sc.args), "-duration", cfg.duration.String(), "-dsn", cfg.dsn)
	if cfg.dir != "" {
		args = append(args, "-dir", cfg.dir)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, impl), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, workload.Result{}, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	line, _, _ := bufio.NewReader(&stdout).ReadLine()
	var res workload.Result
	if err := json.Unmarshal(line, &res); err != nil {
		return nil, workload.Result{}, fmt.Errorf("its output %.80q is not a result line: %w", line, err)
	}
	return line, res, nil
}

// progress is one run's main figures, for the log.
func progress(k kind, r workload.Result) string {
	switch k {
	case noRelay:
		return fmt.Sprintf("%.0f commits/s, ack p99 %.2f ms, %.1f µs CPU/commit", r.CommitTPS, r.AckP99, r.CPUPerMsg)
	case drain:
		return fmt.Sprintf("drain %.0f msg/s, %.1f µs CPU/msg, lost %d, duplicates %d", r.DrainMPS, r.CPUPerMsg, r.Lost, r.Duplicates)
	}
	return fmt.Sprintf("%.0f commits/s, %.0f msg/s, e2e p99 %.2f ms, %.1f µs CPU/msg, lost %d, duplicates %d",
		r.CommitTPS, r.RelayMPS, r.E2EP99, r.CPUPerMsg, r.Lost, r.Duplicates)
}
