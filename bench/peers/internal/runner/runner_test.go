package runner

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theus-go/theus/bench/peers/workload"
)

func TestStats(t *testing.T) {
	for _, c := range []struct {
		vals        []float64
		lo, med, hi float64
	}{
		{[]float64{3, 1, 2}, 1, 2, 3},
		{[]float64{4, 1, 3, 2}, 1, 2.5, 4},
		{[]float64{7}, 7, 7, 7},
	} {
		lo, med, hi := stats(c.vals)
		if lo != c.lo || med != c.med || hi != c.hi {
			t.Errorf("stats(%v) = %v, %v, %v; want %v, %v, %v", c.vals, lo, med, hi, c.lo, c.med, c.hi)
		}
	}
}

func TestRotateStartsEachRepetitionElsewhere(t *testing.T) {
	impls := []string{"a", "b", "c"}
	for rep, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if got := rotate(impls, rep); !slices.Equal(got, want) {
			t.Errorf("rotate(rep %d) = %v, want %v", rep, got, want)
		}
	}
	if !slices.Equal(impls, []string{"a", "b", "c"}) {
		t.Errorf("rotate changed its argument: %v", impls)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		unit string
		v    float64
		want string
	}{
		{"/s", 1234567.4, "1,234,567"},
		{"/s", 999.5, "1,000"},
		{"count", 0, "0"},
		{"ms", 4.5, "4.50"},
		{"ms", 0.0123, "0.012"},
		{"µs", 196.04, "196.0"},
	} {
		if got := format(c.unit, c.v); got != c.want {
			t.Errorf("format(%q, %v) = %q, want %q", c.unit, c.v, got, c.want)
		}
	}
}

func TestReportShowsMediansAndRatios(t *testing.T) {
	sc, err := scenarios([]string{"c8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	theus, ok1 := lookup("theus-sqlite")
	peer, ok2 := lookup("pgx-outbox")
	if !ok1 || !ok2 {
		t.Fatal("theus-sqlite or pgx-outbox unknown")
	}
	cfg := config{reps: 3, impls: []impl{theus, peer}, scenarios: sc}
	var runs []workload.Result
	for _, tps := range []float64{5000, 6000, 4000} {
		runs = append(runs,
			workload.Result{Impl: "theus-sqlite", CommitTPS: tps * 2, RelayMPS: tps * 2, E2EP99: 4, CPUPerMsg: 50},
			workload.Result{Impl: "pgx-outbox", CommitTPS: tps, RelayMPS: tps, E2EP99: 10, CPUPerMsg: 200, Lost: 1})
	}
	var b strings.Builder
	report(&b, env{command: "bench-peers -reps 3", date: time.Unix(0, 0).UTC()}, cfg, map[string][]workload.Result{"c8": runs})
	out := b.String()
	for _, want := range []string{
		"| theus-sqlite | 8,000 / 10,000 / 12,000 | 8,000 / 10,000 / 12,000 |",
		"| pgx-outbox | 4,000 / 5,000 / 6,000 |",
		"| 50.0 / 50.0 / 50.0 | 0 | 0 |",
		"| 200.0 / 200.0 / 200.0 | 3 | 0 |", // lost: the sum over the runs
		"| theus-sqlite / pgx-outbox | 2.00× | 2.00× | 0.40× | 0.25× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestCellOfOneRunIsItsFigure(t *testing.T) {
	if got := cell(commitTPS, []workload.Result{{CommitTPS: 5014}}); got != "5,014" {
		t.Errorf("cell of one run = %q, want 5,014", got)
	}
	if got := cell(commitTPS, nil); got != "no run" {
		t.Errorf("cell of no run = %q, want no run", got)
	}
}

func TestRatioKeepsSmallOnesVisible(t *testing.T) {
	for _, c := range []struct {
		t, p float64
		want string
	}{{10, 5, "2.00×"}, {13.1, 2764.7, "0.005×"}, {1, 0, "–"}} {
		if got := ratio(c.t, c.p); got != c.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", c.t, c.p, got, c.want)
		}
	}
}
