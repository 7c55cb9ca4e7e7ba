package gigawallet

import (
	"encoding/hex"
	"errors"
	"fmt"
	"image/color"
	"net/url"

	qrcode "github.com/skip2/go-qrcode"
)

// The invoice QR code, GET /invoice/:invoiceID/qr.png: what GigaWallet v1.0.8 draws (contract §2),
// a 512×512 PNG at error-correction level Medium with lenient colour parameters.
const (
	// QRSizePixels is the width and height of every QR PNG. GigaWallet has no size parameter.
	QRSizePixels = 512
	// QRContentMaxBytes bounds what one QR code encodes. A payment URI is about 150 bytes; a QR
	// code at level Medium holds at most 2331 bytes (version 40), so everything within the bound
	// fits and the image never grows past QRSizePixels.
	QRContentMaxBytes = 2048
	// qrColourTextMaxChars bounds the fg/bg text that is hex-decoded; "rrggbbaa" has 8. Longer
	// text takes the default, like every other unusable colour.
	qrColourTextMaxChars = 64
)

// ErrQRContentTooLong: QRPNG was asked to encode more than QRContentMaxBytes.
var ErrQRContentTooLong = errors.New("QR content too long")

// The colours GigaWallet falls back to: black modules with alpha 254 (not 255, as its code has
// it; a client comparing images would see the difference) on white.
var (
	qrForegroundDefault = color.NRGBA{R: 0, G: 0, B: 0, A: 254}
	qrBackgroundDefault = color.NRGBA{R: 255, G: 255, B: 255, A: 255}
)

// PaymentURI returns the text of an invoice's QR code as GigaWallet v1.0.8 writes it:
// dogecoin:<address>?amount=<total>&cxt=<connectURL, query-escaped>. The parameter is "cxt", not
// the "ctx" its docs name: clients scan what the code wrote (contract §0). total is the
// invoice total already written as GigaWallet writes amounts ("24.89774"); connectURL is
// PubAPIRootURL + "/invoice/<address>/connect".
func PaymentURI(address, total, connectURL string) string {
	return "dogecoin:" + address + "?amount=" + total + "&cxt=" + url.QueryEscape(connectURL)
}

// QRPNG draws content as a QRSizePixels×QRSizePixels PNG QR code at error-correction level
// Medium. fg and bg are the module and background colours as the qr.png query gives them: hex
// RGB ("ff0000") or RGBA ("ff000080"); anything else (empty, "#000000", bad hex,
// fewer than 3 bytes) silently takes the default, as GigaWallet does, because its clients send
// such values and expect an image, not an error. The only error is content longer than
// QRContentMaxBytes (or one the encoder refuses).
//
// The encoder is github.com/skip2/go-qrcode, the one GigaWallet uses: its output for a given
// content, level and size is what GigaWallet's clients have seen.
func QRPNG(content, fg, bg string) ([]byte, error) {
	if len(content) > QRContentMaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrQRContentTooLong, len(content), QRContentMaxBytes)
	}
	code, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("encode QR content: %w", err)
	}
	code.ForegroundColor = parseQRColour(fg, qrForegroundDefault)
	code.BackgroundColor = parseQRColour(bg, qrBackgroundDefault)
	image, err := code.PNG(QRSizePixels)
	if err != nil {
		return nil, fmt.Errorf("draw QR PNG: %w", err)
	}
	return image, nil
}

// parseQRColour reads GigaWallet's colour parameter: hex-decoded, at least 3 bytes, RGB from the
// first three, alpha from the fourth if present, else opaque. Anything else is fallback.
//
// The bytes are read as non-premultiplied (color.NRGBA), which is what "rrggbbaa" means to the
// person writing it. GigaWallet reads them as premultiplied color.RGBA, which is the same for
// opaque colours and for its default, and for a translucent colour such as "ff000080" (a
// premultiplied value whose red exceeds its alpha) gives the PNG encoder a colour whose
// conversion overflows into another colour: a bug not to keep.
func parseQRColour(text string, fallback color.NRGBA) color.NRGBA {
	if len(text) > qrColourTextMaxChars {
		return fallback
	}
	raw, err := hex.DecodeString(text)
	if err != nil || len(raw) < 3 {
		return fallback
	}
	colour := color.NRGBA{R: raw[0], G: raw[1], B: raw[2], A: 255}
	if len(raw) >= 4 {
		colour.A = raw[3]
	}
	return colour
}
