package runner

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/theus-go/theus/bench/peers/workload"
)

// A figure is a column of the report.
type figure struct {
	title string
	get   func(workload.Result) float64
	unit  string // how a value is printed: "/s", "ms", "µs", "count"
	// sum: the cell is the total over the runs (lost, duplicates), not
	// min / median / max.
	sum bool
	// ratio: the figure is in the Theus/peer table.
	ratio bool
}

var (
	commitTPS = figure{title: "commits/s", get: func(r workload.Result) float64 { return r.CommitTPS }, unit: "/s", ratio: true}
	relayMPS  = figure{title: "relay msg/s", get: func(r workload.Result) float64 { return r.RelayMPS }, unit: "/s", ratio: true}
	drainMPS  = figure{title: "drain msg/s", get: func(r workload.Result) float64 { return r.DrainMPS }, unit: "/s", ratio: true}
	e2eP50    = figure{title: "e2e p50 ms", get: func(r workload.Result) float64 { return r.E2EP50 }, unit: "ms"}
	e2eP99    = figure{title: "e2e p99 ms", get: func(r workload.Result) float64 { return r.E2EP99 }, unit: "ms", ratio: true}
	ackP50    = figure{title: "ack p50 ms", get: func(r workload.Result) float64 { return r.AckP50 }, unit: "ms"}
	ackP99    = figure{title: "ack p99 ms", get: func(r workload.Result) float64 { return r.AckP99 }, unit: "ms"}
	cpuPerMsg = figure{title: "CPU µs/msg", get: func(r workload.Result) float64 { return r.CPUPerMsg }, unit: "µs", ratio: true}
	// cpuPerCommit is cpu_us_per_msg of a run without relay: nothing is
	// delivered, so it is per commit.
	cpuPerCommit = figure{title: "CPU µs/commit", get: cpuPerMsg.get, unit: "µs", ratio: true}
	lost         = figure{title: "lost", get: func(r workload.Result) float64 { return float64(r.Lost) }, unit: "count", sum: true}
	dups         = figure{title: "duplicates", get: func(r workload.Result) float64 { return float64(r.Duplicates) }, unit: "count", sum: true}
)

// figures are the columns of a scenario's table.
func figures(k kind) []figure {
	switch k {
	case noRelay:
		return []figure{commitTPS, ackP50, ackP99, cpuPerCommit}
	case drain:
		return []figure{drainMPS, cpuPerMsg, lost, dups}
	}
	return []figure{commitTPS, relayMPS, e2eP50, e2eP99, ackP50, ackP99, cpuPerMsg, lost, dups}
}

// report prints the header and, per scenario, the table of figures and
// the table of ratios.
func report(w io.Writer, e env, cfg config, results map[string][]workload.Result) {
	fmt.Fprintf(w, "# Peer benchmark\n\n")
	fmt.Fprintf(w, "- command: `%s`\n", e.command)
	fmt.Fprintf(w, "- machine: %s; %s\n", e.machine, e.goVersion)
	if e.postgres != "" {
		fmt.Fprintf(w, "- PostgreSQL: %s\n", e.postgres)
	}
	if e.sqliteDir != "" {
		fmt.Fprintf(w, "- theus-sqlite files in %s\n", e.sqliteDir)
	}
	fmt.Fprintf(w, "- date: %s\n", e.date.Format("2006-01-02 15:04 MST"))
	if cfg.reps == 1 {
		fmt.Fprintf(w, "- 1 repetition: a cell is one run's figure\n")
	} else {
		fmt.Fprintf(w, "- %d repetitions, implementations interleaved, their order rotated each repetition; a cell is min / median / max over the repetitions (lost and duplicates: the total)\n", cfg.reps)
	}
	for _, sc := range cfg.scenarios {
		figs := figures(sc.kind)
		byImpl := map[string][]workload.Result{}
		for _, r := range results[sc.name] {
			byImpl[r.Impl] = append(byImpl[r.Impl], r)
		}
		fmt.Fprintf(w, "\n## %s\n\n", sc.title)
		row(w, append([]string{"implementation"}, titles(figs)...))
		row(w, slices.Repeat([]string{"---"}, len(figs)+1))
		for _, impl := range cfg.impls {
			cells := []string{impl.name}
			for _, f := range figs {
				cells = append(cells, cell(f, byImpl[impl.name]))
			}
			row(w, cells)
		}
		ratios(w, cfg.impls, figs, byImpl)
	}
}

func titles(figs []figure) []string {
	var t []string
	for _, f := range figs {
		t = append(t, f.title)
	}
	return t
}

func row(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// cell is min / median / max of f over runs, or their sum.
func cell(f figure, runs []workload.Result) string {
	if len(runs) == 0 {
		return "no run"
	}
	vals := values(f, runs)
	if f.sum {
		var s float64
		for _, v := range vals {
			s += v
		}
		return format(f.unit, s)
	}
	lo, med, hi := stats(vals)
	if len(vals) == 1 {
		return format(f.unit, med)
	}
	return format(f.unit, lo) + " / " + format(f.unit, med) + " / " + format(f.unit, hi)
}

func values(f figure, runs []workload.Result) []float64 {
	vals := make([]float64, len(runs))
	for i, r := range runs {
		vals[i] = f.get(r)
	}
	return vals
}

// stats is the minimum, the median (the mean of the two middle values
// for an even count) and the maximum of vals, which is not empty.
func stats(vals []float64) (lo, med, hi float64) {
	s := slices.Sorted(slices.Values(vals))
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return s[0], med, s[n-1]
}

// ratios prints, for every Theus implementation and every peer, the ratio
// of their medians for each ratio figure.
func ratios(w io.Writer, impls []impl, figs []figure, byImpl map[string][]workload.Result) {
	var rf []figure
	for _, f := range figs {
		if f.ratio {
			rf = append(rf, f)
		}
	}
	var lines [][]string
	for _, t := range impls {
		for _, p := range impls {
			tr, pr := byImpl[t.name], byImpl[p.name]
			if !t.theus || p.theus || len(tr) == 0 || len(pr) == 0 {
				continue
			}
			cells := []string{t.name + " / " + p.name}
			for _, f := range rf {
				_, tm, _ := stats(values(f, tr))
				_, pm, _ := stats(values(f, pr))
				cells = append(cells, ratio(tm, pm))
			}
			lines = append(lines, cells)
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n")
	row(w, append([]string{"Theus / peer, medians"}, titles(rf)...))
	row(w, slices.Repeat([]string{"---"}, len(rf)+1))
	for _, l := range lines {
		row(w, l)
	}
	fmt.Fprintf(w, "\n(above 1× is better for rates, below 1× for e2e p99 and CPU)\n")
}

// ratio is t/p with two decimals, three below 0.1 (where two would show
// 0.00× for a hundredfold gap).
func ratio(t, p float64) string {
	if p == 0 {
		return "–"
	}
	r, d := t/p, 2
	if r < 0.1 {
		d = 3
	}
	return strconv.FormatFloat(r, 'f', d, 64) + "×"
}

// format prints a value of a unit: rates as whole numbers with thousands
// separators, latencies with two decimals (three below 1 ms), CPU with one.
func format(unit string, v float64) string {
	switch unit {
	case "/s", "count":
		return thousands(int64(v + 0.5))
	case "ms":
		if v < 1 {
			return strconv.FormatFloat(v, 'f', 3, 64)
		}
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func thousands(n int64) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
