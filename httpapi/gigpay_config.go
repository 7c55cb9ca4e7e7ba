package httpapi

// GigPayConfig turns on the GigPay API (seed 002; docs/gigpay-api.md): payment tokens and
// payments between the wallets of ProjectID.
type GigPayConfig struct {
	// ProjectID is the ledger project whose customer wallets are GigPay accounts; it is created,
	// with its `usd` asset (100 fractions), the first time a GigPay route needs it.
	ProjectID string
	// Env names the wallet app's environment in token links:
	// https://wallet.{Env}.gigpay.com/payment/{token}; empty is production
	// (https://wallet.gigpay.com/payment/{token}).
	Env string
	// Clock, when set, is the handlers' clock in Unix milliseconds (an expiresAtUtc not after it
	// is refused before anything is proposed); nil is the system clock. Tests set it to their
	// backend's batch clock.
	Clock func() int64
}
