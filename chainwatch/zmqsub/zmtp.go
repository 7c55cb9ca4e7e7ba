package zmqsub

// ZMTP 3.0 (rfc.zeromq.org/spec/23) as far as a SUB socket with NULL security needs it: the
// 64-byte greeting, the READY command, and frames (a flags byte; a one-byte length, or eight
// bytes big-endian when the LONG flag is set; the body).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	greetingBytes = 64
	flagMore      = 0x01
	flagLong      = 0x02
	flagCommand   = 0x04
	// messageFramesMax bounds the frames of one message; a notification has three.
	messageFramesMax = 8
)

// greeting is our greeting: signature, version 3.0, mechanism NULL, as-server false.
func greeting() []byte {
	g := make([]byte, greetingBytes)
	g[0], g[9] = 0xff, 0x7f
	g[10], g[11] = 3, 0
	copy(g[12:32], "NULL")
	return g
}

// frame encodes one frame.
func frame(flags byte, body []byte) []byte {
	if len(body) <= 255 {
		return append([]byte{flags, byte(len(body))}, body...)
	}
	encoded := binary.BigEndian.AppendUint64([]byte{flags | flagLong}, uint64(len(body)))
	return append(encoded, body...)
}

// readyCommand is READY with the Socket-Type property.
func readyCommand(socketType string) []byte {
	body := append([]byte{5}, "READY"...)
	body = append(body, byte(len("Socket-Type")))
	body = append(body, "Socket-Type"...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(socketType)))
	return append(body, socketType...)
}

// parseReady checks that a frame is the READY command and returns its Socket-Type.
func parseReady(flags byte, body []byte) (string, error) {
	if flags&flagCommand == 0 || len(body) < 6 || body[0] != 5 || string(body[1:6]) != "READY" {
		return "", errors.New("peer did not send READY")
	}
	properties := body[6:]
	for len(properties) > 0 {
		nameLength := int(properties[0])
		if len(properties) < 1+nameLength+4 {
			return "", errors.New("READY property cut short")
		}
		name := string(properties[1 : 1+nameLength])
		valueLength := binary.BigEndian.Uint32(properties[1+nameLength:])
		rest := properties[1+nameLength+4:]
		if uint64(valueLength) > uint64(len(rest)) {
			return "", errors.New("READY property value cut short")
		}
		if name == "Socket-Type" {
			return string(rest[:valueLength]), nil
		}
		properties = rest[valueLength:]
	}
	return "", errors.New("READY without Socket-Type")
}

// frameReader reads frames, refusing any longer than frameMaxBytes before reading it.
type frameReader struct {
	reader        io.Reader
	frameMaxBytes int
	header        [9]byte
}

// next reads one frame.
func (r *frameReader) next() (byte, []byte, error) {
	if _, err := io.ReadFull(r.reader, r.header[:2]); err != nil {
		return 0, nil, err
	}
	flags := r.header[0]
	if flags&^(flagMore|flagLong|flagCommand) != 0 {
		return 0, nil, fmt.Errorf("frame flags %#x", flags)
	}
	length := uint64(r.header[1])
	if flags&flagLong != 0 {
		if _, err := io.ReadFull(r.reader, r.header[2:9]); err != nil {
			return 0, nil, err
		}
		length = binary.BigEndian.Uint64(r.header[1:9])
	}
	if length > uint64(r.frameMaxBytes) {
		return 0, nil, fmt.Errorf("frame of %d bytes, at most %d", length, r.frameMaxBytes)
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r.reader, body); err != nil {
		return 0, nil, err
	}
	return flags, body, nil
}

// message reads the frames of one message, skipping commands between messages (a PING of
// ZMTP 3.1 peers).
func (r *frameReader) message() ([][]byte, error) {
	var frames [][]byte
	totalBytes := 0
	for {
		flags, body, err := r.next()
		if err != nil {
			return nil, err
		}
		if flags&flagCommand != 0 {
			if len(frames) > 0 {
				return nil, errors.New("command inside a message")
			}
			continue
		}
		totalBytes += len(body)
		if totalBytes > r.frameMaxBytes+64 {
			return nil, fmt.Errorf("message larger than %d bytes", r.frameMaxBytes+64)
		}
		frames = append(frames, body)
		if flags&flagMore == 0 {
			return frames, nil
		}
		if len(frames) >= messageFramesMax {
			return nil, fmt.Errorf("message of more than %d frames", messageFramesMax)
		}
	}
}
