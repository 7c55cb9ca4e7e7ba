package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/httpapi"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
)

// relayTx is a transaction paying koinu to address (inputs are the node's to judge).
func relayTx(t *testing.T, address string, koinu int64, trailing ...byte) string {
	t.Helper()
	tx := wire.NewMsgTx(1)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{1}, Index: 0}, []byte{0x51}, nil))
	script, err := dogecoin.P2PKHScript(address, dogecoin.Testnet)
	if err != nil {
		t.Fatal(err)
	}
	tx.AddTxOut(wire.NewTxOut(koinu, script))
	var raw bytes.Buffer
	if err := tx.BtcEncode(&raw, wire.ProtocolVersion, wire.BaseEncoding); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(append(raw.Bytes(), trailing...))
}

// TestDogeConnectRelay: the relay the envelope names (/dc/<invoice>) on the public listener. A
// transaction that pays the invoice's total to its address goes to the node (accepted, or
// declined with the node's reason); one that does not is 400 invalid_outputs, a malformed one
// invalid_tx, an unknown payment not_found; status follows the invoice (unpaid, then confirmed
// once the follower sees it paid). Before, the envelope named a relay that answered 404.
func TestDogeConnectRelay(t *testing.T) {
	s := newPayoutServer(t)
	cfg := gigaWalletTestConfig(testKeychain(t))
	cfg.Chain = s.chain
	public := newPublicClientWith(t, s, cfg)

	var envelope struct{ Payload string }
	var invoice struct{ ID string }
	s.c.do("POST", "/account/shop/invoice", `{"required_confirmations":0,"items":[{"type":"item","name":"tea","quantity":1,"value":"2.5"}]}`).
		expect(200).decode(&invoice)
	public.do("GET", "/invoice/"+invoice.ID+"/connect", nil).expect(200).decode(&envelope)
	payload, _ := base64.StdEncoding.DecodeString(envelope.Payload)
	if !strings.Contains(string(payload), `"relay":"http://pay.example/dc/`+invoice.ID+`"`) {
		t.Fatalf("the envelope's relay: %s", payload)
	}
	// An invoice that never expires: the longest timeout (30 days), not DogeConnect's 1800 s,
	// after which wallets would refuse it half an hour after checkout.
	if !strings.Contains(string(payload), `"timeout":2592000,`) {
		t.Fatalf("the envelope's timeout for an invoice that never expires: %s", payload)
	}
	relay := "/dc/" + invoice.ID
	status := func(want string) {
		t.Helper()
		var reply gw.RelayReply
		public.do("POST", relay+"/status", map[string]any{"id": invoice.ID}).expect(200).decode(&reply)
		if reply.ID != invoice.ID || reply.Status != want || (want == gw.RelayUnpaid) != (reply.Required == nil) {
			t.Fatalf("status %+v, want %s (progress only when accepted or confirmed)", reply, want)
		}
	}
	status(gw.RelayUnpaid)

	refusal := func(r *response, status int, code string) {
		t.Helper()
		var body gw.RelayError
		r.expect(status).decode(&body)
		if body.Code != code || body.Message == "" {
			t.Fatalf("refusal %s, want %d %s", r.body, status, code)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control %q", r.header.Get("Cache-Control"))
		}
	}
	const total = 250_000_000
	refusal(public.do("POST", relay+"/pay", map[string]any{"id": invoice.ID, "tx": relayTx(t, invoice.ID, total-1)}), 400, gw.RelayErrorInvalidOutputs)
	refusal(public.do("POST", relay+"/pay", map[string]any{"id": invoice.ID, "tx": relayTx(t, s.payTo(), total)}), 400, gw.RelayErrorInvalidOutputs)
	refusal(public.do("POST", relay+"/pay", map[string]any{"id": invoice.ID, "tx": "zz"}), 400, gw.RelayErrorInvalidTx)
	refusal(public.do("POST", relay+"/pay", map[string]any{"id": invoice.ID, "tx": relayTx(t, invoice.ID, total, 0)}), 400, gw.RelayErrorInvalidTx)
	refusal(public.do("POST", relay+"/pay", map[string]any{"id": invoice.ID, "tx": ""}), 400, gw.RelayErrorInvalidTx)
	refusal(public.do("POST", relay+"/pay", map[string]any{"id": "nOther", "tx": relayTx(t, invoice.ID, total)}), 404, gw.RelayErrorNotFound)
	refusal(public.do("POST", "/dc/nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/pay", map[string]any{"id": "nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
		"tx": relayTx(t, invoice.ID, total)}), 404, gw.RelayErrorNotFound)
	refusal(public.do("POST", relay+"/pay", map[string]any{"id": invoice.ID, "tx": relayTx(t, invoice.ID, total), "extra": 1}), 400, gw.RelayErrorBadRequest)
	// Refused by the listener's own checks before the relay's: DogeConnect's shape all the same.
	refusal(public.do("POST", "/dc/%3Cscript%3E/status", map[string]any{"id": "<script>"}), 404, gw.RelayErrorNotFound)
	refusal(public.withHeader("Content-Type", "text/plain").do("POST", relay+"/status", `{"id":"`+invoice.ID+`"}`), 415, gw.RelayErrorBadRequest)
	refusal(public.do("POST", relay+"/pay", `{"id":"`+invoice.ID+`","tx":"`+strings.Repeat("00", 600_000)+`"}`), 413, gw.RelayErrorBadRequest)
	if r := public.do("GET", relay+"/pay", nil); r.header.Get("Allow") != "POST" {
		t.Fatalf("GET on the relay: Allow %q", r.header.Get("Allow"))
	} else {
		refusal(r, 405, gw.RelayErrorBadRequest)
	}
	if s.chain.broadcasts() != 0 {
		t.Fatalf("refused payments reached the node: %d", s.chain.broadcasts())
	}

	// The node refuses it: declined, with its reason.
	s.chain.refuse = true
	var reply gw.RelayReply
	public.do("POST", relay+"/pay", map[string]any{"id": invoice.ID, "tx": relayTx(t, invoice.ID, total)}).expect(200).decode(&reply)
	if reply.Status != gw.RelayDeclined || reply.Reason != "bad-txns-inputs-missingorspent" || reply.TxID != "" || reply.Required != nil {
		t.Fatalf("declined reply %+v", reply) // DogeConnect: no txid or progress with declined
	}
	// It takes it: accepted, the transaction sent as submitted.
	s.chain.refuse = false
	tx := relayTx(t, invoice.ID, total+1)
	public.do("POST", relay+"/pay", map[string]any{"id": invoice.ID, "tx": tx}).expect(200).decode(&reply)
	if reply.Status != gw.RelayAccepted || len(reply.TxID) != 64 || reply.Required == nil || *reply.Required != 0 ||
		s.chain.broadcasts() != 2 || hex.EncodeToString(s.chain.sent[1]) != tx {
		t.Fatalf("accepted reply %+v, %d broadcasts", reply, s.chain.broadcasts())
	}
	// The follower sees it mined: confirmed.
	s.mine(&gigawallet.ObservedOutput{Vout: 0, Address: invoice.ID, Koinu: total + 1})
	status(gw.RelayConfirmed)

	// An invoice that expired unpaid: its status and a payment are both 400 expired, not
	// "unpaid", which would tell a wallet it can still pay.
	var late struct{ ID string }
	s.c.do("POST", "/account/shop/invoice", `{"expire_minutes":1,"items":[{"type":"item","name":"tea","quantity":1,"value":"1"}]}`).
		expect(200).decode(&late)
	s.backend.Advance(2 * 60_000)
	s.c.do("POST", "/account/shop", `{}`).expect(200) // any write: the batch expires what is due
	refusal(public.do("POST", "/dc/"+late.ID+"/status", map[string]any{"id": late.ID}), 400, gw.RelayErrorExpired)
	refusal(public.do("POST", "/dc/"+late.ID+"/pay", map[string]any{"id": late.ID, "tx": relayTx(t, late.ID, 100_000_000)}), 400, gw.RelayErrorExpired)
}

// newPublicClientWith is the public listener over the payout server's backend with cfg.
func newPublicClientWith(t *testing.T, s *payoutServer, cfg *httpapi.GigaWalletConfig) *apiClient {
	return &apiClient{t: t, handler: httpapi.NewPublic(httpapi.PublicConfig{GigaWallet: cfg, Backend: s.backend}, testLogger(t), nil)}
}
