package celcheck_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/celcheck"
)

type Seat struct {
	Row string `json:"row"`
	N   int    `json:"n"`
}

type Event struct {
	ID       string            `json:"id"`
	Sold     int64             `json:"sold"`
	Capacity uint16            `json:"capacity"`
	Price    float64           `json:"price"`
	Tags     []string          `json:"tags"`
	Seats    []Seat            `json:"seats"`
	Holds    map[string]int    `json:"holds"`
	Starts   time.Time         `json:"starts"`
	Length   time.Duration     `json:"length"`
	Open     bool              `json:"open"`
	Venue    Seat              `json:"venue"`
	Meta     map[string]string `json:"meta,omitempty"`
	hidden   int
	Skipped  int `json:"-"`
}

type Args struct {
	Seats int `json:"seats"`
}

func typeOf[T any](t *testing.T) *celcheck.Type {
	t.Helper()
	d, err := celcheck.TypeOf(reflect.TypeFor[T]())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEval(t *testing.T) {
	ev := Event{ID: "e1", Sold: 300, Capacity: 400, Price: 9.5, Tags: []string{"rock"},
		Seats: []Seat{{"A", 1}, {"B", 2}}, Holds: map[string]int{"x": 3},
		Starts: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Length: 2 * time.Hour, Open: true, Venue: Seat{"Z", 9}}
	cases := []struct {
		expr string
		want bool
	}{
		{"self.sold <= self.capacity", true},
		{"self.sold > self.capacity", false},
		{"self.sold + args.seats <= self.capacity", true},
		{"self.sold + args.seats * 101 <= self.capacity", false},
		{"self.price < 10.0 && self.open", true},
		{"'rock' in self.tags && size(self.tags) == 1", true},
		{"self.seats.all(s, s.n > 0) && self.seats[1].row == 'B'", true},
		{"self.holds['x'] == 3 && !('y' in self.holds)", true},
		{"self.starts < timestamp('2027-01-01T00:00:00Z') && self.length == duration('2h')", true},
		{"self.venue.row == 'Z' && self.venue.n == 9", true},
		{"self.id.startsWith('e') && self.id.upperAscii() == 'E1'", true},
		{"math.greatest(self.sold, 1) == 300", true},
	}
	self, args := typeOf[Event](t), typeOf[Args](t)
	for _, c := range cases {
		p, err := celcheck.Compile(c.expr, self, args)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		got, err := p.Eval(&ev, &Args{Seats: 1})
		if err != nil || got != c.want {
			t.Errorf("%s = %v, %v; want %v", c.expr, got, err, c.want)
		}
	}
}

func TestEvalScalarSelf(t *testing.T) {
	p, err := celcheck.Compile("self >= 0 && self < 100", typeOf[int64](t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[int64]bool{0: true, -1: false, 100: false} {
		if got, err := p.Eval(&v, nil); err != nil || got != want {
			t.Errorf("%d: got %v, %v", v, got, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	self, args := typeOf[Event](t), typeOf[Args](t)
	cases := []struct{ expr, want string }{
		{"self.sols <= 1", "1:5: undefined field 'sols'"},
		{"self.sold", "a check must be true or false, and this expression is of type int"},
		{"self.id <= 3", "found no matching overload for '_<=_' applied to '(string, int)'"},
		{"other > 1", "undeclared reference to 'other'"},
		{"self.sold <=", "Syntax error"},
	}
	for _, c := range cases {
		_, err := celcheck.Compile(c.expr, self, args)
		var ce *celcheck.CompileError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.expr, err, c.want)
		}
	}
	if _, err := celcheck.Compile("args.seats > 0", self, nil); err == nil || !strings.Contains(err.Error(), "undeclared reference to 'args'") {
		t.Errorf("args without args: %v", err)
	}
}

func TestEvalError(t *testing.T) {
	p, err := celcheck.Compile("self.sold / 0 == 1", typeOf[Event](t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Eval(&Event{}, nil); err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Errorf("err = %v, want division by zero", err)
	}
}

func TestCostLimit(t *testing.T) {
	p, err := celcheck.Compile("self.tags.all(a, self.tags.all(b, self.tags.all(c, a + b + c != '')))", typeOf[Event](t), nil)
	if err != nil {
		t.Fatal(err)
	}
	tags := make([]string, 200)
	for i := range tags {
		tags[i] = "x"
	}
	if _, err := p.Eval(&Event{Tags: tags}, nil); err == nil || !strings.Contains(err.Error(), "cost") {
		t.Errorf("err = %v, want the cost limit", err)
	}
}

func BenchmarkEval(b *testing.B) {
	self, _ := celcheck.TypeOf(reflect.TypeFor[Event]())
	p, err := celcheck.Compile("self.sold <= self.capacity", self, nil)
	if err != nil {
		b.Fatal(err)
	}
	ev := Event{Sold: 300, Capacity: 400}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := p.Eval(&ev, nil); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
