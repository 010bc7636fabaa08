package gen

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// shopContract holds money.Amount, a struct of another package of its
// module, in its state.
const shopContract = `version: 1
package: shop
imports:
  money: example.com/shop/money
state:
  domain:
    balance: money.Amount
    history: "[]money.Amount"
    fees: {map: money.Cents, key: string}
    tree: money.Node
`

// moneyV1 is the package as the store was written with it.
const moneyV1 = `package money

import "time"

type Amount struct {
	Units    int64  ` + "`json:\"units\"`" + `
	Currency string
	Meta     Meta
}

type Meta struct {
	At   time.Time
	Tags []string ` + "`json:\"tags,omitempty\"`" + `
}

type Cents int64

type Node struct {
	Kids []Node
	Meta Meta
}
`

// shopFingerprints writes the shop module with package money as given and
// returns the fingerprints of the contract's state fields.
func shopFingerprints(t *testing.T, dir, money string) []string {
	t.Helper()
	write(t, filepath.Join(dir, "go.mod"), []byte("module example.com/shop\n\ngo 1.26\n"))
	write(t, filepath.Join(dir, "money", "money.go"), []byte(money))
	file := filepath.Join(dir, "contracts.yaml")
	write(t, file, []byte(shopContract))
	m, err := contract.Parse(file, []byte(shopContract))
	if err != nil {
		t.Fatal(err)
	}
	var fps []string
	for _, f := range m.State {
		fps = append(fps, fieldFingerprint(f))
	}
	return fps
}

// TestImportedFingerprint checks that the fingerprint of a type of another
// package follows what a store keeps of it: a field renamed in JSON
// changes it, at any depth; a Go rename that keeps the JSON name does not.
func TestImportedFingerprint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	dir := t.TempDir()
	const (
		meta   = "example.com/shop/money.Meta{At time.Time, tags []string}"
		amount = "example.com/shop/money.Amount{units int64, Currency string, Meta " + meta + "}"
	)
	v1 := shopFingerprints(t, dir, moneyV1)
	want := []string{
		amount,
		"[]" + amount,
		"collection[string]example.com/shop/money.Cents(int64)",
		"example.com/shop/money.Node{Kids []example.com/shop/money.Node, Meta " + meta + "}",
	}
	if strings.Join(v1, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fingerprints:\n%s\nwant\n%s", strings.Join(v1, "\n"), strings.Join(want, "\n"))
	}
	for _, tc := range []struct {
		name, from, to string
		same           bool
	}{
		{"renamed field", "Units    int64  `json:\"units\"`", "Cents    int64  `json:\"cents\"`", false},
		{"renamed JSON name", "`json:\"units\"`", "`json:\"amount\"`", false},
		{"changed type", "Units    int64", "Units    float64", false},
		{"nested field renamed", "`json:\"tags,omitempty\"`", "`json:\"labels,omitempty\"`", false},
		{"nested field's type changed", "At   time.Time", "At   time.Duration", false},
		{"Go rename, same JSON name", "Units    int64  `json:\"units\"`", "Count    int64  `json:\"units\"`", true},
		{"named basic type changed", "type Cents int64", "type Cents string", false},
	} {
		if !strings.Contains(moneyV1, tc.from) {
			t.Fatalf("%s: %q is not in package money", tc.name, tc.from)
		}
		got := shopFingerprints(t, dir, strings.Replace(moneyV1, tc.from, tc.to, 1))
		if same := strings.Join(got, "\n") == strings.Join(v1, "\n"); same != tc.same {
			t.Errorf("%s: fingerprints\n%s\nwere\n%s", tc.name, strings.Join(got, "\n"), strings.Join(v1, "\n"))
		}
	}
}

// TestImportedDrift checks, end to end, that a SQLite store written while
// money.Amount had one shape sees a field of it renamed as what it is for
// stored values: a field removed (its values ignored, with a warning) and
// a field added (zero values); a migration carries values across.
func TestImportedDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	dir := t.TempDir()
	old := shopFingerprints(t, dir, moneyV1)[0]
	renamed := shopFingerprints(t, dir, strings.Replace(moneyV1, `json:"units"`, `json:"cents"`, 1))[0]

	schema := func(fp string) *engine.Schema[shopState] {
		return &engine.Schema[shopState]{
			Paths: []string{"domain.balance"},
			Clone: func(s *shopState) shopState { return *s },
			State: []engine.StateField[shopState]{
				engine.ValueField("domain.balance", fp, func(s *shopState) *json.RawMessage { return &s.Balance }),
			},
		}
	}
	ctx := context.Background()
	path := filepath.Join(dir, "shop.db")
	open := func(fp string) (*engine.Engine[shopState], *sqlite.Store, error) {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		e, err := engine.New(ctx, schema(fp), shopState{}, engine.WithStore(st))
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return e, st, nil
	}
	e, st, err := open(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CompareAndSwap(ctx, 0, setBalance{`{"units":5}`}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	st.Close()

	e, st, err = open(renamed)
	if err != nil {
		t.Fatalf("opening with money.Amount's units renamed to cents: %v", err)
	}
	e.Close()
	st.Close()
	changes, err := engine.CompareTypes("domain.balance", old, renamed)
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	want := "domain.balance.cents: field added (stored values read its zero value)\n" +
		"domain.balance.units: field removed (stored values of it are ignored)"
	if err != nil || strings.Join(got, "\n") != want {
		t.Fatalf("changes %q, %v; want %q", got, err, want)
	}
}

// shopState is the engine's state of shopContract, with the balance kept
// as it is encoded: only its fingerprint matters here.
type shopState struct{ Balance json.RawMessage }

// setBalance is a Change that sets domain.balance.
type setBalance struct{ v string }

func (c setBalance) Record(tx *engine.Tx) { tx.Write(0) }

func (c setBalance) Apply(s *shopState, _ uint64) { s.Balance = json.RawMessage(c.v) }
