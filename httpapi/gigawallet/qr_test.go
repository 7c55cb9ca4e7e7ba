package gigawallet

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

const testInvoiceAddress = "DQ6dt7wCjLDxtdSwCYSAMFHwrD5Q1xybmL"

// TestPaymentURI pins GigaWallet's QR text: "cxt", the total as given, the connect URL
// query-escaped so that a URI parser gives it back whole.
func TestPaymentURI(t *testing.T) {
	connectURL := "https://pay.example.com/invoice/" + testInvoiceAddress + "/connect"
	got := PaymentURI(testInvoiceAddress, "24.89774", connectURL)
	want := "dogecoin:" + testInvoiceAddress + "?amount=24.89774&cxt=https%3A%2F%2Fpay.example.com%2Finvoice%2F" +
		testInvoiceAddress + "%2Fconnect"
	if got != want {
		t.Fatalf("PaymentURI = %s\nwant         %s", got, want)
	}

	// A root URL with characters that mean something in a query survives a parse.
	tricky := "https://pay.example.com/gw?a=1&b=2 3#frag+x/invoice/" + testInvoiceAddress + "/connect"
	parsed, err := url.Parse(PaymentURI(testInvoiceAddress, "0.5", tricky))
	if err != nil {
		t.Fatal(err)
	}
	query := parsed.Query()
	if parsed.Scheme != "dogecoin" || parsed.Opaque != testInvoiceAddress || query.Get("amount") != "0.5" ||
		query.Get("cxt") != tricky || len(query) != 2 {
		t.Fatalf("parsed %q: scheme %q opaque %q query %v", parsed, parsed.Scheme, parsed.Opaque, query)
	}
}

// decodeQR decodes a QRPNG image and checks its size.
func decodeQR(t *testing.T, encoded []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(encoded))
	if err != nil {
		t.Fatalf("decode PNG: %v", err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, QRSizePixels, QRSizePixels) {
		t.Fatalf("image bounds %v, want %dx%d", got, QRSizePixels, QRSizePixels)
	}
	return img
}

func nrgba(c color.Color) color.NRGBA { return color.NRGBAModel.Convert(c).(color.NRGBA) }

// levelMBitmap returns the modules of content at level Medium, the 4-module quiet zone
// included, true for dark.
func levelMBitmap(t *testing.T, content string) [][]bool {
	t.Helper()
	code, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	return code.Bitmap()
}

func moduleCount(t *testing.T, content string) int { return len(levelMBitmap(t, content)) }

// moduleCentre returns the pixel coordinate of the centre of module index of modules, in a
// QRSizePixels image.
func moduleCentre(modules, index int) int { return (2*index + 1) * QRSizePixels / (2 * modules) }

// TestQRPNGColours checks the colours actually drawn: valid hex RGB and RGBA are used as given
// (RGBA not premultiplied), everything else takes GigaWallet's defaults silently.
func TestQRPNGColours(t *testing.T) {
	defaultFG := color.NRGBA{0, 0, 0, 254}
	defaultBG := color.NRGBA{255, 255, 255, 255}
	tests := []struct {
		name           string
		fg, bg         string
		wantFG, wantBG color.NRGBA
	}{
		{"defaults for empty", "", "", defaultFG, defaultBG},
		{"RGB", "ff0000", "00ff00", color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 255, 0, 255}},
		{"upper-case RGB", "1A2B3C", "FFFFF0", color.NRGBA{0x1a, 0x2b, 0x3c, 255}, color.NRGBA{255, 255, 0xf0, 255}},
		{"RGBA not premultiplied", "c8000080", "445566ff", color.NRGBA{200, 0, 0, 128}, color.NRGBA{0x44, 0x55, 0x66, 255}},
		{"five bytes: the fifth ignored", "0102030405", "ffffff", color.NRGBA{1, 2, 3, 4}, defaultBG},
		{"hash prefix", "#000000", "#ffffff", defaultFG, defaultBG},
		{"not hex", "zz", "zzzzzz", defaultFG, defaultBG},
		{"one byte", "12", "ab", defaultFG, defaultBG},
		{"odd length", "fff", "12345", defaultFG, defaultBG},
		{"two bytes", "1234", "abcd", defaultFG, defaultBG},
		{"too long", strings.Repeat("ab", 33), strings.Repeat("00", 40), defaultFG, defaultBG},
		{"fg given, bg bad", "336699", "#fff", color.NRGBA{0x33, 0x66, 0x99, 255}, defaultBG},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			content := "dogecoin:" + testInvoiceAddress + "?amount=1"
			encoded, err := QRPNG(content, test.fg, test.bg)
			if err != nil {
				t.Fatal(err)
			}
			img := decodeQR(t, encoded)
			// The corner is in the quiet zone (background); module (4,4), just inside the
			// 4-module quiet zone, is the top-left corner of a finder pattern (foreground).
			if got := nrgba(img.At(0, 0)); got != test.wantBG {
				t.Errorf("background %v, want %v", got, test.wantBG)
			}
			finder := moduleCentre(moduleCount(t, content), 4)
			if got := nrgba(img.At(finder, finder)); got != test.wantFG {
				t.Errorf("foreground %v, want %v", got, test.wantFG)
			}
			// Exactly the two colours appear.
			seen := map[color.NRGBA]bool{}
			for y := 0; y < QRSizePixels; y++ {
				for x := 0; x < QRSizePixels; x++ {
					seen[nrgba(img.At(x, y))] = true
				}
			}
			if len(seen) != 2 || !seen[test.wantFG] || !seen[test.wantBG] {
				t.Errorf("colours drawn %v, want exactly %v and %v", seen, test.wantFG, test.wantBG)
			}
		})
	}
}

// TestQRPNGModules samples the centre of every module of the PNG and compares it with the
// bitmap of the same content at level Medium: the image encodes that content (no pure-Go QR
// decoder is available to read it back independently), at the error-correction level
// GigaWallet uses, scaled to the whole image.
func TestQRPNGModules(t *testing.T) {
	contents := []string{
		PaymentURI(testInvoiceAddress, "24.89774", "https://pay.example.com/invoice/"+testInvoiceAddress+"/connect"),
		strings.Repeat("x", QRContentMaxBytes), // the largest content: version 40
	}
	for _, content := range contents {
		encoded, err := QRPNG(content, "", "")
		if err != nil {
			t.Fatal(err)
		}
		img := decodeQR(t, encoded)
		bitmap := levelMBitmap(t, content)
		modules := len(bitmap)
		if modules*2 > QRSizePixels {
			t.Fatalf("%d modules: fewer than two pixels each", modules)
		}
		mismatches := 0
		for row := range modules {
			for column := range modules {
				dark := nrgba(img.At(moduleCentre(modules, column), moduleCentre(modules, row))) == qrForegroundDefault
				if dark != bitmap[row][column] {
					mismatches++
				}
			}
		}
		if mismatches != 0 {
			t.Errorf("content of %d bytes: %d of %d modules differ from the level-M bitmap", len(content), mismatches, modules*modules)
		}
	}
}

// TestQRPNGContentBound: content up to QRContentMaxBytes is drawn, one byte more is an error.
func TestQRPNGContentBound(t *testing.T) {
	if _, err := QRPNG(strings.Repeat("7", QRContentMaxBytes), "", ""); err != nil {
		t.Fatalf("content of %d bytes: %v", QRContentMaxBytes, err)
	}
	_, err := QRPNG(strings.Repeat("7", QRContentMaxBytes+1), "", "")
	if !errors.Is(err, ErrQRContentTooLong) {
		t.Fatalf("content of %d bytes: err %v, want ErrQRContentTooLong", QRContentMaxBytes+1, err)
	}
}
