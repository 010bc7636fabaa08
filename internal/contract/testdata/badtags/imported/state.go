package p

import (
	"io"
	"net/http"

	"github.com/theus-go/theus/internal/contract/testdata/money"
	"github.com/theus-go/theus/internal/contract/testdata/refused"
)

// State holds types of other packages that state cannot hold, at any
// depth, as the imported_refused YAML case does.
type State struct {
	Domain struct {
		Handler    http.HandlerFunc          `theus:"handler"`
		Reader     io.Reader                 `theus:"reader"`
		Events     refused.Events            `theus:"events"`
		Ref        refused.Ref               `theus:"ref"`
		Unexported refused.Unexported        `theus:"unexported"`
		Nested     []refused.Nested          `theus:"nested"`
		Deep       map[string]refused.Deep   `theus:"deep"`
		Hidden     refused.Hidden            `theus:"hidden"`
		Amount     money.Amount              `theus:"amount"`
		Amounts    map[string][]money.Amount `theus:"amounts"`
	} `theus:"domain"`
}
