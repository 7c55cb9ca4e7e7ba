// Package gigpay holds the shapes of the GigPay API (seed 002, docs/gigpay-api.md): strict
// decoders of its request bodies and query parameters, exact decimal amounts, RFC 3339 times,
// the views of tokens, payments and accounts, and the opaque cursor of the payments list. It
// decides no business rule (the state machine, fsm/gigpay, does) and calls no backend; the
// handlers in httpapi do.
//
// Amounts never pass through a float: they are read from the JSON text (a number literal or a
// string) digit by digit into gigpay.Decimal and written back as JSON number literals built
// from the stored integer.
package gigpay
