package engine_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

type traceKey struct{}

// fromContext is a WithHeaders func: the trace id a test put in the
// context, or no headers.
func fromContext(ctx context.Context) map[string]string {
	id, ok := ctx.Value(traceKey{}).(string)
	if !ok {
		return nil
	}
	return map[string]string{"traceparent": id}
}

func TestWithHeadersStampsEveryMessageOfTheCall(t *testing.T) {
	two := &proc{name: "two", inputs: []int{pathC0}, outputs: []int{pathC0},
		fn: func(in []int, arg int) ([]int, []string, error) {
			return []int{in[0] + 1}, []string{"a", "b"}, nil
		}}
	procs := []*proc{two, incC1}
	st := memory.New()
	e := newEngine(t, st, procs, engine.WithHeaders(fromContext))

	ctx := context.WithValue(context.Background(), traceKey{}, "trace-1")
	if _, err := e.Exec(ctx, 0, &call{p: two}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Exec(context.Background(), 1, &call{p: incC1, arg: 1}); err != nil {
		t.Fatal(err)
	}
	msgs := undelivered(t, st)
	if len(msgs) != 3 {
		t.Fatalf("store holds %d messages, want 3", len(msgs))
	}
	for _, m := range msgs[:2] {
		if got := m.Headers["traceparent"]; got != "trace-1" || len(m.Headers) != 1 {
			t.Errorf("message %s headers = %v, want traceparent trace-1 only", m.ID, m.Headers)
		}
	}
	if msgs[2].Headers != nil {
		t.Errorf("message of a call without trace: headers = %v, want nil", msgs[2].Headers)
	}
}

func TestWithHeadersOnlyForCallsThatEmit(t *testing.T) {
	quiet := &proc{name: "quiet", inputs: []int{pathC0}, outputs: []int{pathC0},
		fn: func(in []int, arg int) ([]int, []string, error) { return []int{in[0] + 1}, nil, nil }}
	procs := []*proc{quiet, readC0}
	var calls atomic.Int64
	e := newEngine(t, memory.New(), procs, engine.WithHeaders(func(context.Context) map[string]string {
		calls.Add(1)
		return map[string]string{"x": "y"}
	}))
	for i, p := range procs {
		if _, err := e.Exec(context.Background(), i, &call{p: p}); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("headers func called %d times for calls that emitted nothing, want 0", n)
	}
}

// A conflict re-runs the process: the committed attempt's messages carry
// the headers, not only the first attempt's.
func TestWithHeadersSurvivesARerun(t *testing.T) {
	procs := []*proc{incC0}
	st := memory.New()
	e := newEngine(t, st, procs, engine.WithHeaders(fromContext))
	c := &call{p: incC0, arg: 1}
	c.hook = func() {
		if c.runs == 1 { // commit under the first attempt, so it conflicts
			if _, err := e.Exec(context.Background(), 0, &call{p: incC0, arg: 2}); err != nil {
				t.Error(err)
			}
		}
	}
	ctx := context.WithValue(context.Background(), traceKey{}, "trace-2")
	if _, err := e.Exec(ctx, 0, c); err != nil {
		t.Fatal(err)
	}
	if c.runs != 2 {
		t.Fatalf("process ran %d times, want 2 (one conflict)", c.runs)
	}
	msgs := undelivered(t, st)
	if len(msgs) != 2 || msgs[1].Key != strconv.Itoa(1) || msgs[1].Headers["traceparent"] != "trace-2" {
		t.Fatalf("messages = %+v, want the re-run's message last, with traceparent trace-2", msgs)
	}
	if msgs[0].Headers != nil {
		t.Fatalf("the inner call (no trace) got headers %v", msgs[0].Headers)
	}
}
