package fsm

import (
	"fmt"
)

// Envelope is what one log command carries: a family's command and the kernel's options.
//
// Encoded form (version 2): version byte, op (uvarint), flags byte, [idempotency], payload.
// Version 1 is the flat command of the first release, read by the registry's legacy decoder.
type Envelope struct {
	Command Command
	// Idempotency, when set, makes the command answer once per key (idempotency.go).
	Idempotency *Idempotency
	// legacy marks a command of the first release (version 1), which had no outbox: it emits
	// no events, so that a replica that rebuilds its state from an old log and one that kept
	// the old release's store hold the same outbox.
	legacy bool
}

const (
	envelopeLegacy  = 1
	envelopeVersion = 2

	flagIdempotency = 1 << 0
	flagsKnown      = flagIdempotency
)

// EncodeCommand encodes a command in a plain envelope.
func EncodeCommand(c Command) []byte { return EncodeEnvelope(Envelope{Command: c}) }

// EncodeEnvelope encodes an envelope for the log.
func EncodeEnvelope(env Envelope) []byte {
	e := Encoder{Buf: make([]byte, 0, 64)}
	e.Byte(envelopeVersion)
	e.Uvarint(uint64(env.Command.Op()))
	var flags byte
	if env.Idempotency != nil {
		flags |= flagIdempotency
	}
	e.Byte(flags)
	if env.Idempotency != nil {
		env.Idempotency.encode(&e)
	}
	env.Command.Encode(&e)
	return e.Buf
}

// DecodeCommand decodes an envelope and returns its command. Any malformed input is an error;
// the machine treats an error here as divergence and panics, so the cluster decodes every
// forwarded command before proposing it.
func (r *Registry) DecodeCommand(data []byte) (Command, error) {
	env, err := r.DecodeEnvelope(data)
	return env.Command, err
}

// DecodeEnvelope parses what EncodeEnvelope (or the first release) wrote.
func (r *Registry) DecodeEnvelope(data []byte) (Envelope, error) {
	return r.decodeEnvelope(NewDecoder(data))
}

// decodeEnvelope decodes d's input; the apply loop passes its own reused decoder.
func (r *Registry) decodeEnvelope(d *Decoder) (Envelope, error) {
	data := d.buf
	if len(data) > 0 && data[0] == envelopeLegacy {
		if r.legacy == nil {
			return Envelope{}, fmt.Errorf("decode command: version 1 without a legacy decoder")
		}
		c, err := r.legacy(data)
		return Envelope{Command: c, legacy: true}, err
	}
	if v := d.Byte(); d.err == nil && v != envelopeVersion {
		return Envelope{}, fmt.Errorf("decode command: unknown version %d", v)
	}
	op := d.Uvarint()
	if d.err != nil {
		return Envelope{}, d.Finish("command")
	}
	var spec *OpSpec
	if op <= 0xffff {
		spec = r.specOf(Op(op))
	}
	if spec == nil {
		return Envelope{}, fmt.Errorf("decode command: unknown op %d", op)
	}
	flags := d.Byte()
	if flags&^flagsKnown != 0 {
		return Envelope{}, fmt.Errorf("decode command: unknown flags %#x", flags)
	}
	var env Envelope
	if flags&flagIdempotency != 0 {
		env.Idempotency = decodeIdempotency(d)
	}
	env.Command = spec.Decode(d)
	if err := d.Finish(spec.Name); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// Result encoding (for forwarding between nodes): op (uvarint), flags byte (bit 0: error, bit 1:
// value, bit 2: replayed), [code, message], [value].
const (
	resultHasError = 1 << 0
	resultHasValue = 1 << 1
	resultReplayed = 1 << 2
	resultKnown    = resultHasError | resultHasValue | resultReplayed
)

// EncodeResult encodes a *Result (shard.ResultCodec).
func (r *Registry) EncodeResult(result any) ([]byte, error) {
	res, ok := result.(*Result)
	if !ok {
		return nil, fmt.Errorf("fsm: encode result: unexpected %T", result)
	}
	return appendResult(nil, res), nil
}

func appendResult(dst []byte, res *Result) []byte {
	e := Encoder{Buf: dst}
	e.Uvarint(uint64(res.Op))
	var flags byte
	if res.Err != nil {
		flags |= resultHasError
	}
	if res.Value != nil {
		flags |= resultHasValue
	}
	if res.Replayed {
		flags |= resultReplayed
	}
	e.Byte(flags)
	if res.Err != nil {
		e.String(string(res.Err.Code))
		e.String(res.Err.Message)
	}
	if res.Value != nil {
		res.Value.Encode(&e)
	}
	return e.Buf
}

// DecodeResult decodes what EncodeResult wrote (shard.ResultCodec).
func (r *Registry) DecodeResult(data []byte) (any, error) {
	return r.decodeResult(data)
}

func (r *Registry) decodeResult(data []byte) (*Result, error) {
	d := NewDecoder(data)
	res := &Result{Op: Op(d.Uvarint())}
	flags := d.Byte()
	if d.err == nil && flags&^resultKnown != 0 {
		return nil, fmt.Errorf("fsm: decode result: unknown flags %#x", flags)
	}
	res.Replayed = flags&resultReplayed != 0
	if flags&resultHasError != 0 {
		res.Err = &Error{Code: ErrorCode(d.String()), Message: d.String()}
	}
	if flags&resultHasValue != 0 && d.err == nil {
		spec := r.specOf(res.Op)
		if spec == nil || spec.DecodeValue == nil {
			return nil, fmt.Errorf("fsm: decode result: op %d carries no value", res.Op)
		}
		res.Value = spec.DecodeValue(d)
	}
	if err := d.Finish("result"); err != nil {
		return nil, err
	}
	return res, nil
}
