// Package bank is a small bank on Theus: accounts live in a collection, so
// a transfer conflicts only with transfers that touch one of its two
// accounts, and the contract's invariant refuses any commit that would
// leave a balance below zero — no check in the code can forget it.
package bank

//go:generate go run github.com/theus-go/theus/cmd/theusgen generate

import "context"

// Bank implements the generated Processes.
type Bank struct{}

func (Bank) OpenAccount(_ context.Context, in OpenAccountIn, out *OpenAccountOut) error {
	if _, ok := in.Accounts().Get(in.Args.ID); ok {
		return ErrAccountExists
	}
	if in.Args.Initial < 0 {
		return ErrInvalidAmount
	}
	a := Account{ID: in.Args.ID, Owner: in.Args.Owner, Balance: in.Args.Initial}
	out.Accounts().Put(a.ID, a)
	out.EmitAccountOpened(AccountOpened(a))
	return nil
}

func (Bank) Deposit(_ context.Context, in DepositIn, out *DepositOut) error {
	if in.Args.Amount <= 0 {
		return ErrInvalidAmount
	}
	v, ok := in.Accounts().Get(in.Args.ID)
	if !ok {
		return ErrNoSuchAccount
	}
	a := v.Clone()
	a.Balance += in.Args.Amount
	out.Accounts().Put(a.ID, a)
	return nil
}

// Transfer does not check the balance: the contract's invariant
// domain.accounts[*].balance >= 0 refuses the commit if it would go
// negative, with engine.ErrRuleViolation.
func (Bank) Transfer(_ context.Context, in TransferIn, out *TransferOut) error {
	if in.Args.Amount <= 0 {
		return ErrInvalidAmount
	}
	if in.Args.From == in.Args.To {
		return ErrSameAccount
	}
	fv, ok1 := in.Accounts().Get(in.Args.From)
	tv, ok2 := in.Accounts().Get(in.Args.To)
	if !ok1 || !ok2 {
		return ErrNoSuchAccount
	}
	from, to := fv.Clone(), tv.Clone()
	from.Balance -= in.Args.Amount
	to.Balance += in.Args.Amount
	out.Accounts().Put(from.ID, from)
	out.Accounts().Put(to.ID, to)
	out.EmitTransferCompleted(TransferCompleted{Account: from.ID, From: from.ID, To: to.ID, Amount: in.Args.Amount})
	out.SetResult(from.Balance)
	return nil
}

func (Bank) Balance(_ context.Context, in BalanceIn, out *BalanceOut) error {
	v, ok := in.Accounts().Get(in.Args.ID)
	if !ok {
		return ErrNoSuchAccount
	}
	out.SetResult(v.Balance())
	return nil
}
