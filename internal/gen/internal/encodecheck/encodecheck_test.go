package encodecheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// openSQLite starts an engine on a SQLite store in dir; the cleanup closes
// both.
func openSQLite(t *testing.T, dir string, opts ...engine.Option) (*Engine, func()) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(ctx, State{}, App{}, append(opts, engine.WithStore(st))...)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			e.Close()
			st.Close()
		})
	}
	t.Cleanup(closeAll)
	return e, closeAll
}

// checkRefused checks that err is the refusal of a value at path, caused
// by want (errors.As), and not a failure of the store.
func checkRefused(t *testing.T, what string, err error, path string, want any) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error", what)
	case errors.Is(err, engine.ErrStore):
		t.Errorf("%s: %v: the store failed; the call should have been refused before the commit", what, err)
	case !strings.Contains(err.Error(), "theus: encode "+path+": "):
		t.Errorf("%s: %v, want an error naming %s", what, err, path)
	case want != nil && !errors.As(err, want):
		t.Errorf("%s: %v, want a %T in the chain", what, err, want)
	}
}

// farFuture is a time that encoding/json refuses: its year has five digits.
var farFuture = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

// TestUnencodableValueFailsOnlyItsCall: processes set NaN, infinities and
// a time JSON cannot write while many others commit to other paths of a
// SQLite store. Each of those calls fails with an error naming its path;
// every other call commits, and all of it is there after a restart.
func TestUnencodableValueFailsOnlyItsCall(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, closeAll := openSQLite(t, dir)

	const workers, hits = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*hits)
	for w := range workers {
		wg.Go(func() {
			for range hits {
				if _, err := e.Hit(ctx, HitArgs{Key: fmt.Sprint("k", w), By: 1}); err != nil {
					errs <- err
				}
			}
		})
	}
	var uv *json.UnsupportedValueError
	var me *json.MarshalerError
	for range hits / 4 {
		for _, rate := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			_, err := e.SetRate(ctx, SetRateArgs{Rate: rate})
			checkRefused(t, fmt.Sprint("SetRate ", rate), err, "domain.rate", &uv)
		}
		_, err := e.Record(ctx, RecordArgs{Key: "r", Reading: Reading{Value: math.NaN()}})
		checkRefused(t, "Record with a NaN", err, "domain.readings[r]", &uv)
		_, err = e.Record(ctx, RecordArgs{Key: "r", Reading: Reading{Value: 1, At: farFuture}})
		checkRefused(t, "Record in the year 10000", err, "domain.readings[r]", &me)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call on another path failed: %v", err)
	}
	if _, err := e.SetRate(ctx, SetRateArgs{Rate: 1.5}); err != nil {
		t.Fatal(err)
	}
	closeAll()

	e2, _ := openSQLite(t, dir)
	snap := e2.Snapshot()
	if snap.Version() != workers*hits+1 || snap.Rate() != 1.5 || snap.Last().Value() != 0 {
		t.Errorf("recovered version %d, rate %v, last %v; want %d, 1.5, 0", snap.Version(), snap.Rate(), snap.Last().Value(), workers*hits+1)
	}
	for w := range workers {
		if n, _ := snap.Hits().Get(fmt.Sprint("k", w)); n != hits {
			t.Errorf("recovered k%d = %d, want %d", w, n, hits)
		}
	}
}

// TestPatchWithUnencodableValue: CompareAndSwap returns the refusal of a
// value that cannot be encoded, sequences nothing, and the version it
// checked is still the current one.
func TestPatchWithUnencodableValue(t *testing.T) {
	ctx := context.Background()
	e, _ := openSQLite(t, t.TempDir())
	v, err := e.CompareAndSwap(ctx, 0, func() (p Patch) { p.SetRate(2); return }())
	if err != nil {
		t.Fatal(err)
	}
	var uv *json.UnsupportedValueError
	var me *json.MarshalerError
	for _, tc := range []struct {
		name, path string
		patch      func(*Patch)
		want       any
	}{
		{"NaN rate", "domain.rate", func(p *Patch) { p.SetRate(math.NaN()) }, &uv},
		{"NaN last", "domain.last", func(p *Patch) { p.SetLast(Reading{Value: math.Inf(1)}) }, &uv},
		{"entry in the year 10000", "domain.readings[b]", func(p *Patch) {
			p.PutReadings("a", Reading{Value: 1})
			p.PutReadings("b", Reading{At: farFuture})
		}, &me},
	} {
		var p Patch
		tc.patch(&p)
		_, err := e.CompareAndSwap(ctx, v, p)
		checkRefused(t, tc.name, err, tc.path, tc.want)
	}
	// Nothing was sequenced: the version checked is still the current one.
	var p Patch
	p.SetRate(3)
	if got, err := e.CompareAndSwap(ctx, v, p); err != nil || got != v+1 {
		t.Fatalf("CompareAndSwap(%d) after the refusals = %d, %v; want %d", v, got, err, v+1)
	}
}

// limitCodec encodes as JSON but refuses counters above 1000: with
// engine.WithCodec, state values are encoded with the codec, so its
// refusals count as much as JSON's.
type limitCodec struct{}

var errTooBig = errors.New("limitCodec: counter above 1000")

func (limitCodec) Marshal(v any) ([]byte, error) {
	if n, ok := v.(*int64); ok && *n > 1000 {
		return nil, errTooBig
	}
	return json.Marshal(v)
}

func (limitCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func TestCodecRefusalFailsOnlyItsCall(t *testing.T) {
	ctx := context.Background()
	e, _ := openSQLite(t, t.TempDir(), engine.WithCodec(limitCodec{}))
	var wg sync.WaitGroup
	errs := make(chan error, 4*20)
	for w := range 4 {
		wg.Go(func() {
			for range 20 {
				if _, err := e.Hit(ctx, HitArgs{Key: fmt.Sprint("k", w), By: 1}); err != nil {
					errs <- err
				}
			}
		})
	}
	for range 10 {
		_, err := e.Hit(ctx, HitArgs{Key: "big", By: 2000})
		checkRefused(t, "Hit by 2000", err, "domain.hits[big]", &errTooBig)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call on another path failed: %v", err)
	}
	var p Patch
	p.PutHits("big", 1001)
	_, err := e.CompareAndSwap(ctx, e.Snapshot().Version(), p)
	checkRefused(t, "PutHits 1001", err, "domain.hits[big]", &errTooBig)
}

// TestRunRefusesUnencodable: RunX checks what a run set as the engine does.
func TestRunRefusesUnencodable(t *testing.T) {
	_, err := RunSetRate(App{}, State{}, SetRateArgs{Rate: math.NaN()})
	var uv *json.UnsupportedValueError
	checkRefused(t, "RunSetRate NaN", err, "domain.rate", &uv)
	_, err = RunRecord(App{}, State{}, RecordArgs{Key: "x", Reading: Reading{Value: 1, At: farFuture}})
	var me *json.MarshalerError
	checkRefused(t, "RunRecord in the year 10000", err, "domain.readings[x]", &me)
	if _, err := RunSetRate(App{}, State{}, SetRateArgs{Rate: 1}); err != nil {
		t.Error(err)
	}
}
