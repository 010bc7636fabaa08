package golden

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

func fullCart() Cart {
	return Cart{
		ID:     "c<1>",
		Items:  []Item{{Sku: "a", Qty: 1, Notes: []string{"x", ""}}, {Sku: "b"}},
		Points: []Point{{1, 2}, {-3, 4}},
		BySku:  map[string]Item{"z": {Sku: "z"}, "a&b": {Sku: "ab", Notes: []string{}}, "é": {}, "": {Qty: 2}},
		ByPos:  map[int]Item{10: {Sku: "ten"}, 9: {Sku: "nine"}, -1: {}, 100: {}, 0: {}},
		Counts: map[string]int{"b": 2, "a": 1, "<": 0},
		Ranks:  map[int64]string{-9223372036854775808: "min", 2: "two", 11: "eleven"},
		Grid:   [][]int{{1, 2}, nil, {}},
		Groups: map[string][]Item{"g": {{Sku: "g1"}}, "nil": nil, "empty": {}},
		Layers: []map[string]Point{{"p": {5, 6}}, nil, {}},
		Nested: [][]Item{{{Sku: "n", Notes: []string{"deep"}}}, nil},
		Flags:  map[uint8]bool{255: true, 3: false, 20: true},
	}
}

func TestJSON(t *testing.T) {
	carts := []Cart{{}, fullCart(), {Items: []Item{}, BySku: map[string]Item{}, Grid: [][]int{}}}
	for _, c := range carts {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := theusAppendCart(nil, &c)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("generated encoder:\n%s\nencoding/json:\n%s", got, want)
		}
	}
	ch := CartChanged{Cart: fullCart(), Removed: []Item{{Sku: "r"}}, Totals: map[int]float64{10: 1.5, 2: 1e21, -3: 1e-7}}
	want, _ := json.Marshal(ch)
	if got, err := theusAppendCartChanged(nil, &ch); err != nil || string(got) != string(want) {
		t.Errorf("generated encoder: %s %v\nencoding/json:\n%s", got, err, want)
	}
}

// mutate changes every nested part of c that a shallow copy would share.
func mutate(c *Cart) {
	c.Items[0].Notes[0] = "changed"
	c.Points[0].X = 99
	c.BySku["z"] = Item{Sku: "changed"}
	c.Counts["a"] = 99
	c.Ranks[2] = "changed"
	c.Grid[0][0] = 99
	c.Groups["g"][0].Sku = "changed"
	c.Layers[0]["p"] = Point{}
	c.Nested[0][0].Notes[0] = "changed"
	c.Flags[3] = true
}

func TestClone(t *testing.T) {
	orig := fullCart()
	c := theusCloneCart(&orig)
	if !reflect.DeepEqual(c, orig) {
		t.Fatal("clone differs from the original")
	}
	mutate(&c)
	if !reflect.DeepEqual(orig, fullCart()) {
		t.Error("changing the clone changed the original")
	}
	var empty Cart
	if c := theusCloneCart(&empty); !reflect.DeepEqual(c, empty) {
		t.Error("clone of the zero Cart is not zero (nil must stay nil)")
	}
	withEmpty := Cart{Items: []Item{}, BySku: map[string]Item{}, Grid: [][]int{{}}}
	if c := theusCloneCart(&withEmpty); !reflect.DeepEqual(c, withEmpty) {
		t.Error("clone turned empty slices or maps into nil")
	}
}

type impl struct{ t *testing.T }

func (p impl) AddItem(ctx context.Context, in AddItemIn, out *AddItemOut) error {
	cart := in.Cart().Clone()
	mutate(&cart) // a clone shares nothing with the snapshot
	cart.Items = append(cart.Items, in.Args.Item)
	if in.CartItems().Len() != 2 || in.Cart().Items().At(0).Notes().At(0) != "x" {
		p.t.Error("the input views do not show the snapshot")
	}
	var skus []string
	for k, v := range in.Cart().ByPos().All() {
		skus = append(skus, v.Sku())
		_ = k
	}
	if !reflect.DeepEqual(skus, []string{"", "", "nine", "ten", ""}) {
		p.t.Errorf("ByPos().All() order: %q", skus)
	}
	out.SetCart(cart)
	cart.ID = "after set" // Set copies
	out.EmitCartChanged(CartChanged{Cart: cart})
	out.SetResult(in.Args.Extra)
	return nil
}

func TestEngine(t *testing.T) {
	ctx := context.Background()
	initial := State{Domain: DomainState{Cart: fullCart()}}
	e, err := NewEngine(ctx, initial, impl{t})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	mutate(&initial.Domain.Cart) // NewEngine copied it
	if !reflect.DeepEqual(e.Snapshot().Cart().Clone(), fullCart()) {
		t.Fatal("the engine shares the initial state with the caller")
	}
	r, err := e.AddItem(ctx, AddItemArgs{Item: Item{Sku: "new"}, Extra: []Item{{Sku: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 || len(r.MessageIDs) != 1 || len(r.Result) != 1 {
		t.Errorf("receipt %+v", r)
	}
	got := e.Snapshot().Cart()
	if got.ID() != "c<1>" || got.Items().Len() != 3 || got.Items().At(0).Notes().At(0) != "changed" {
		t.Errorf("committed cart %+v", got.Clone())
	}

	eff, err := RunAddItem(impl{t}, State{Domain: DomainState{Cart: fullCart()}}, AddItemArgs{})
	if err != nil {
		t.Fatal(err)
	}
	if eff.Cart == nil || eff.Carts != nil || len(eff.CartChanged) != 1 || eff.CartChanged[0].Cart.ID != "after set" {
		t.Errorf("effects %+v", eff)
	}
}
