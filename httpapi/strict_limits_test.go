package httpapi

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// TestLongArraysRefusedBeforeDecoding: an array longer than any documented list is refused 400
// LimitExceeded by the strict check, before encoding/json builds the slice. A 1 MiB body of
// 350,000 empty operations used to cost about 100 MB and 0.3 s of decoding before the handler's
// own 100-operation limit refused it; now it costs a small fraction of the body's size.
func TestLongArraysRefusedBeforeDecoding(t *testing.T) {
	const prefix, suffix = `{"referenceId":"r","operations":[`, `]}`
	count := (requestBodyMaxBytes - len(prefix) - len(suffix) + 1) / 3
	body := prefix + strings.Repeat("{},", count-1) + "{}" + suffix
	if len(body) > requestBodyMaxBytes {
		t.Fatalf("body of %d bytes", len(body))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, apiErr := decodeTransaction(strings.NewReader(body))
	runtime.ReadMemStats(&after)
	if apiErr == nil || apiErr.code != CodeLimitExceeded || !strings.Contains(apiErr.message, "operations") {
		t.Fatalf("%d operations: %+v, want LimitExceeded naming operations", count, apiErr)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8*requestBodyMaxBytes {
		t.Fatalf("refusing %d operations allocated %d bytes", count, allocated)
	}

	// The longest documented list still passes the check, and one more item does not.
	ids := func(n int) string {
		var b bytes.Buffer
		b.WriteString(`{"walletIds":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"w"`)
		}
		b.WriteString(`]}`)
		return b.String()
	}
	if walletIDs, apiErr := decodeResume(strings.NewReader(ids(resumeWalletIDsMaxCount))); apiErr != nil || len(walletIDs) != resumeWalletIDsMaxCount {
		t.Fatalf("%d wallet IDs: %d, %+v", resumeWalletIDsMaxCount, len(walletIDs), apiErr)
	}
	if _, apiErr := decodeResume(strings.NewReader(ids(resumeWalletIDsMaxCount + 1))); apiErr == nil || apiErr.code != CodeLimitExceeded {
		t.Fatalf("%d wallet IDs: %+v, want LimitExceeded", resumeWalletIDsMaxCount+1, apiErr)
	}
}
