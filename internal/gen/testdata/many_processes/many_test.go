package golden

import (
	"context"
	"reflect"
	"strconv"
	"testing"
)

// impl's process pN sets domain.last to N*1000 plus its argument.
type impl struct{}

func (impl) P0(_ context.Context, in P0In, out *P0Out) error {
	out.SetLast(0*1000 + in.Args.N)
	return nil
}
func (impl) P1(_ context.Context, in P1In, out *P1Out) error {
	out.SetLast(1*1000 + in.Args.N)
	return nil
}
func (impl) P2(_ context.Context, in P2In, out *P2Out) error {
	out.SetLast(2*1000 + in.Args.N)
	return nil
}
func (impl) P3(_ context.Context, in P3In, out *P3Out) error {
	out.SetLast(3*1000 + in.Args.N)
	return nil
}
func (impl) P4(_ context.Context, in P4In, out *P4Out) error {
	out.SetLast(4*1000 + in.Args.N)
	return nil
}
func (impl) P5(_ context.Context, in P5In, out *P5Out) error {
	out.SetLast(5*1000 + in.Args.N)
	return nil
}
func (impl) P6(_ context.Context, in P6In, out *P6Out) error {
	out.SetLast(6*1000 + in.Args.N)
	return nil
}
func (impl) P7(_ context.Context, in P7In, out *P7Out) error {
	out.SetLast(7*1000 + in.Args.N)
	return nil
}
func (impl) P8(_ context.Context, in P8In, out *P8Out) error {
	out.SetLast(8*1000 + in.Args.N)
	return nil
}
func (impl) P9(_ context.Context, in P9In, out *P9Out) error {
	out.SetLast(9*1000 + in.Args.N)
	return nil
}
func (impl) P10(_ context.Context, in P10In, out *P10Out) error {
	out.SetLast(10*1000 + in.Args.N)
	return nil
}
func (impl) P11(_ context.Context, in P11In, out *P11Out) error {
	out.SetLast(11*1000 + in.Args.N)
	return nil
}
func (impl) P12(_ context.Context, in P12In, out *P12Out) error {
	out.SetLast(12*1000 + in.Args.N)
	return nil
}
func (impl) P13(_ context.Context, in P13In, out *P13Out) error {
	out.SetLast(13*1000 + in.Args.N)
	return nil
}
func (impl) P14(_ context.Context, in P14In, out *P14Out) error {
	out.SetLast(14*1000 + in.Args.N)
	return nil
}
func (impl) P15(_ context.Context, in P15In, out *P15Out) error {
	out.SetLast(15*1000 + in.Args.N)
	return nil
}
func (impl) P16(_ context.Context, in P16In, out *P16Out) error {
	out.SetLast(16*1000 + in.Args.N)
	return nil
}
func (impl) P17(_ context.Context, in P17In, out *P17Out) error {
	out.SetLast(17*1000 + in.Args.N)
	return nil
}
func (impl) P18(_ context.Context, in P18In, out *P18Out) error {
	out.SetLast(18*1000 + in.Args.N)
	return nil
}
func (impl) P19(_ context.Context, in P19In, out *P19Out) error {
	out.SetLast(19*1000 + in.Args.N)
	return nil
}
func (impl) P20(_ context.Context, in P20In, out *P20Out) error {
	out.SetLast(20*1000 + in.Args.N)
	return nil
}
func (impl) P21(_ context.Context, in P21In, out *P21Out) error {
	out.SetLast(21*1000 + in.Args.N)
	return nil
}
func (impl) P22(_ context.Context, in P22In, out *P22Out) error {
	out.SetLast(22*1000 + in.Args.N)
	return nil
}
func (impl) P23(_ context.Context, in P23In, out *P23Out) error {
	out.SetLast(23*1000 + in.Args.N)
	return nil
}
func (impl) P24(_ context.Context, in P24In, out *P24Out) error {
	out.SetLast(24*1000 + in.Args.N)
	return nil
}
func (impl) P25(_ context.Context, in P25In, out *P25Out) error {
	out.SetLast(25*1000 + in.Args.N)
	return nil
}
func (impl) P26(_ context.Context, in P26In, out *P26Out) error {
	out.SetLast(26*1000 + in.Args.N)
	return nil
}
func (impl) P27(_ context.Context, in P27In, out *P27Out) error {
	out.SetLast(27*1000 + in.Args.N)
	return nil
}
func (impl) P28(_ context.Context, in P28In, out *P28Out) error {
	out.SetLast(28*1000 + in.Args.N)
	return nil
}
func (impl) P29(_ context.Context, in P29In, out *P29Out) error {
	out.SetLast(29*1000 + in.Args.N)
	return nil
}
func (impl) P30(_ context.Context, in P30In, out *P30Out) error {
	out.SetLast(30*1000 + in.Args.N)
	return nil
}
func (impl) P31(_ context.Context, in P31In, out *P31Out) error {
	out.SetLast(31*1000 + in.Args.N)
	return nil
}
func (impl) P32(_ context.Context, in P32In, out *P32Out) error {
	out.SetLast(32*1000 + in.Args.N)
	return nil
}
func (impl) P33(_ context.Context, in P33In, out *P33Out) error {
	out.SetLast(33*1000 + in.Args.N)
	return nil
}

// runs are the RunX functions, in process order.
var runs = []any{RunP0, RunP1, RunP2, RunP3, RunP4, RunP5, RunP6, RunP7, RunP8, RunP9, RunP10, RunP11, RunP12, RunP13, RunP14, RunP15, RunP16, RunP17, RunP18, RunP19, RunP20, RunP21, RunP22, RunP23, RunP24, RunP25, RunP26, RunP27, RunP28, RunP29, RunP30, RunP31, RunP32, RunP33}

// TestEveryProcessRunsItsOwnBody calls each process through the engine and
// through its RunX: a spec naming the wrong run function panics, and a case
// calling the wrong method sets another value.
func TestEveryProcessRunsItsOwnBody(t *testing.T) {
	ctx := context.Background()
	e, err := NewEngine(ctx, State{}, impl{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range 34 {
		method := reflect.ValueOf(e).MethodByName("P" + strconv.Itoa(i))
		args := reflect.New(method.Type().In(1)).Elem()
		args.Field(0).SetInt(int64(i))
		want := i*1000 + i
		res := method.Call([]reflect.Value{reflect.ValueOf(ctx), args})
		if err, _ := res[1].Interface().(error); err != nil {
			t.Fatalf("P%d: %v", i, err)
		}
		if got := e.Snapshot().Last(); got != want {
			t.Errorf("after P%d, last = %d, want %d", i, got, want)
		}
		res = reflect.ValueOf(runs[i]).Call([]reflect.Value{reflect.ValueOf(impl{}), reflect.ValueOf(State{}), args})
		if err, _ := res[1].Interface().(error); err != nil {
			t.Fatalf("RunP%d: %v", i, err)
		}
		if got := res[0].Field(0).Elem().Int(); got != int64(want) {
			t.Errorf("RunP%d set last to %d, want %d", i, got, want)
		}
	}
}
