package stale

//theus:output model_gen.go

type State struct {
	Domain struct {
		Count int `theus:"count"`
	} `theus:"domain"`
}

//theus:process
type Bump struct {
	Count int `theus:"in,out,path=domain.count"`
}

// impl uses names that only the generated file declares.
type impl struct{}

func (impl) Bump(_ any, in BumpIn, out *BumpOut) error {
	out.SetCount(in.Count() + 1)
	return nil
}
