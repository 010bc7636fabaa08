// Package encodecheck is the generated engine of the tests of values that
// cannot be encoded (a NaN, a time.Time whose year has five digits, a value
// a codec refuses); its processes set what their arguments say.
package encodecheck

//go:generate go run github.com/theus-go/theus/cmd/theusgen generate -f contracts.yaml

import "context"

// App implements Processes.
type App struct{}

func (App) Hit(_ context.Context, in HitIn, out *HitOut) error {
	n, _ := in.Hits().Get(in.Args.Key)
	out.Hits().Put(in.Args.Key, n+in.Args.By)
	return nil
}

func (App) SetRate(_ context.Context, in SetRateIn, out *SetRateOut) error {
	out.SetRate(in.Args.Rate)
	return nil
}

func (App) Record(_ context.Context, in RecordIn, out *RecordOut) error {
	out.Readings().Put(in.Args.Key, in.Args.Reading)
	out.SetLastValue(in.Args.Reading.Value)
	return nil
}
