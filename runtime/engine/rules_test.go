package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

func TestRuleError(t *testing.T) {
	var err error = &engine.RuleError{Process: "update", Path: "domain.user.email", Rule: "regex", Value: "nope"}
	if !errors.Is(err, engine.ErrRuleViolation) {
		t.Error("a RuleError does not match ErrRuleViolation")
	}
	if errors.Is(err, engine.ErrConflict) {
		t.Error("a RuleError matches ErrConflict")
	}
	if got, want := err.Error(), `theus: process update: domain.user.email breaks rule regex, got "nope"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	long := &engine.RuleError{Process: "p", Path: "domain.tags", Rule: "max_len", Value: make([]int, 100)}
	if got := long.Error(); len(got) > 150 || !strings.HasSuffix(got, "…") {
		t.Errorf("a long value is not cut short: %q", got)
	}
}

func TestRejectedRuleCommitsNothing(t *testing.T) {
	procs := []*proc{incC0}
	st := memory.New()
	var m engine.Counters
	e := newEngine(t, st, procs, engine.WithMetrics(&m))
	c := &call{arg: 5}
	// Generated code checks after the process returned; what matters is
	// that the Tx holds the failure when the run ends.
	c.hook = func() {
		c.tx.Fail(&engine.RuleError{Process: "inc_c0", Path: "domain.c0", Rule: "max", Value: 5})
	}
	_, err := exec(t, e, procs, incC0, c)
	var re *engine.RuleError
	if !errors.Is(err, engine.ErrRuleViolation) || !errors.As(err, &re) || re.Path != "domain.c0" || re.Rule != "max" || re.Value != 5 {
		t.Fatalf("err = %v, want the RuleError", err)
	}
	if v, _ := e.Snapshot(); v != 0 || len(undelivered(t, st)) != 0 {
		t.Fatalf("a refused call committed: version %d", v)
	}
	if n, commits := m.RuleViolations.Load(), m.Commits.Load(); n != 1 || commits != 0 {
		t.Fatalf("counted %d rule violations and %d commits, want 1 and 0", n, commits)
	}
}

// A warning is logged and counted once per committed call, not once per
// attempt.
func TestWarnedRuleCommitsAndLogsOnce(t *testing.T) {
	procs := []*proc{incC0}
	var m engine.Counters
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	e := newEngine(t, memory.New(), procs, engine.WithMetrics(&m), engine.WithLogger(logger))
	c := &call{arg: 5}
	c.hook = func() {
		c.tx.Warn(engine.RuleError{Process: "inc_c0", Path: "domain.c0", Rule: "max", Value: c.runs})
		if c.runs == 1 { // make the first attempt conflict
			v, _ := e.Snapshot()
			if _, err := e.CompareAndSwap(context.Background(), v, patch{pathC0: 1}); err != nil {
				t.Errorf("CompareAndSwap: %v", err)
			}
		}
	}
	r, err := exec(t, e, procs, incC0, c)
	if err != nil {
		t.Fatalf("a warned call failed: %v", err)
	}
	if c.runs != 2 || r.Version != 2 {
		t.Fatalf("runs = %d, version %d; want a conflict, then a commit at version 2", c.runs, r.Version)
	}
	if _, s := e.Snapshot(); s.C[0] != 6 {
		t.Fatalf("c0 = %d, want 6: the commit must proceed", s.C[0])
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("logged %d lines, want 1:\n%s", len(lines), logs.String())
	}
	var rec struct {
		Level, Process, Path, Rule string
		Value                      int
		Version                    uint64
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Level != "WARN" || rec.Process != "inc_c0" || rec.Path != "domain.c0" || rec.Rule != "max" || rec.Value != 2 || rec.Version != 2 {
		t.Errorf("logged %s", lines[0])
	}
	if n := m.RuleViolations.Load(); n != 1 {
		t.Errorf("counted %d rule violations, want 1", n)
	}
}

func TestUndeclaredDomainError(t *testing.T) {
	errDeclared := engine.DomainError("declared")
	errOther := engine.DomainError("other")
	errPlain := errors.New("plain")
	cases := []struct {
		name       string
		declared   []error
		returned   error
		undeclared bool
	}{
		{"declared", []error{errDeclared}, errDeclared, false},
		{"declared, wrapped", []error{errDeclared}, fmt.Errorf("user 7: %w", errDeclared), false},
		{"undeclared", []error{errDeclared}, errOther, true},
		{"undeclared, wrapped", []error{errDeclared}, fmt.Errorf("user 7: %w", errOther), true},
		{"nothing declared", nil, errDeclared, true},
		{"not a domain error", nil, errPlain, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			failing := &proc{name: "failing", inputs: []int{pathC0}, outputs: []int{pathC0},
				fn: func([]int, int) ([]int, []string, error) { return nil, nil, tc.returned }}
			schema := schema(failing)
			schema.Processes[0].Errors = tc.declared
			e, err := engine.New(context.Background(), schema, tstate{}, engine.WithStore(memory.New()))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			_, execErr := e.Exec(context.Background(), 0, &call{p: failing})
			runErr := engine.Run(context.Background(), "failing", &call{p: failing}, &tstate{}, tc.declared...)
			for _, err := range []error{execErr, runErr} {
				if !errors.Is(err, tc.returned) {
					t.Errorf("err = %v, want it to match the process's error", err)
				}
				if got := errors.Is(err, engine.ErrUndeclaredError); got != tc.undeclared {
					t.Errorf("err = %v: errors.Is(err, ErrUndeclaredError) = %v, want %v", err, got, tc.undeclared)
				}
				var pe *engine.ProcessError
				if !errors.As(err, &pe) || pe.Undeclared != tc.undeclared {
					t.Errorf("err = %#v, want a *ProcessError with Undeclared %v", err, tc.undeclared)
				}
			}
			if tc.undeclared && !strings.Contains(execErr.Error(), "does not declare") {
				t.Errorf("message %q does not say the error is undeclared", execErr)
			}
		})
	}
}

func TestRuleErrorKey(t *testing.T) {
	err := &engine.RuleError{Process: "transfer", Path: "domain.accounts[*].balance", Rule: "min", Value: int64(-5), Key: "a1"}
	if got, want := err.Error(), `theus: process transfer: domain.accounts[*].balance breaks rule min, got -5 (key "a1")`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// A RuleError says what the value had to be, the value, the key and the
// contract's message; an invariant says so, and who broke it.
func TestRuleErrorMessages(t *testing.T) {
	for _, c := range []struct {
		err  engine.RuleError
		want string
	}{
		{engine.RuleError{Process: "book", Path: "domain.orders[*].seats", Rule: "min", Must: "be >= 1", Value: 0, Key: "o1"},
			`theus: process book: domain.orders[*].seats must be >= 1, got 0 (key "o1")`},
		{engine.RuleError{Process: "sell", Path: "domain.event", Rule: "check", Must: "satisfy self.sold <= self.capacity",
			Value: struct{ Sold, Capacity int }{5, 4}, Message: "sold out", Invariant: true},
			`theus: process sell: invariant domain.event must satisfy self.sold <= self.capacity, got {Sold:5 Capacity:4}: sold out`},
		{engine.RuleError{Path: "global.max", Rule: "min", Must: "be >= 1", Value: 0, Invariant: true},
			`theus: CompareAndSwap: invariant global.max must be >= 1, got 0`},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

func TestFinal(t *testing.T) {
	one, two := 1, 2
	pending := []engine.Pending[string, int]{{Key: "a", Value: &one}, {Key: "b", Value: &one}, {Key: "a", Value: &two}, {Key: "b"}}
	var got []bool
	for i := range pending {
		got = append(got, engine.Final(pending, i))
	}
	if want := []bool{false, false, true, true}; !slices.Equal(got, want) {
		t.Errorf("Final = %v, want %v", got, want)
	}
}

// FinalWrites yields the last write of each key in the order of the
// writes, as Final picks them, below and above the size where it stops
// comparing pairwise.
func TestFinalWrites(t *testing.T) {
	for _, n := range []int{0, 1, 4, 16, 17, 200} {
		var pending []engine.Pending[string, int]
		for i := range n {
			// Keys repeat at varying distances; every third write deletes.
			w := engine.Pending[string, int]{Key: strconv.Itoa(i * i % 11)}
			if i%3 != 0 {
				w.Value = &i
			}
			pending = append(pending, w)
		}
		var want, got []engine.Pending[string, int]
		for i, w := range pending {
			if engine.Final(pending, i) {
				want = append(want, w)
			}
		}
		for w := range engine.FinalWrites(pending) {
			got = append(got, w)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d writes: FinalWrites yields %v, want %v", n, got, want)
		}
		for range engine.FinalWrites(pending) {
			break // stopping early must not panic
		}
	}
}

// A [*] rule checks a call's writes on every commit: while a call writes
// a few entries, the loop must not allocate.
func TestFinalWritesDoesNotAllocate(t *testing.T) {
	one, two := 1, 2
	pending := []engine.Pending[string, int]{{Key: "a", Value: &one}, {Key: "b", Value: &two}, {Key: "a", Value: &two}}
	sum := 0
	if n := testing.AllocsPerRun(100, func() {
		for w := range engine.FinalWrites(pending) {
			if w.Value != nil {
				sum += *w.Value
			}
		}
	}); n != 0 {
		t.Errorf("FinalWrites allocates %v times for 3 writes", n)
	}
	if sum != 4*101 {
		t.Errorf("sum of the final values %d, want %d", sum, 4*101)
	}
}
