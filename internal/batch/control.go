package batch

import (
	"encoding/binary"
	"fmt"
)

// ControlType is the type in a control record's key.
type ControlType int16

// Control record types. Kafka defines no others yet; ParseControlKey passes
// unknown ones through so callers can skip them, as Kafka consumers do.
const (
	ControlAbort  ControlType = 0
	ControlCommit ControlType = 1
)

// String names the control type.
func (t ControlType) String() string {
	switch t {
	case ControlAbort:
		return "abort"
	case ControlCommit:
		return "commit"
	}
	return fmt.Sprintf("control(%d)", int16(t))
}

// ControlKey is the key of a control record: a version and a type, both
// int16.
type ControlKey struct {
	Version int16
	Type    ControlType
}

// controlKeySize is the size of a version 0 control key.
const controlKeySize = 4

// ParseControlKey decodes the key of a record in a control batch. Later
// versions may append fields, which it ignores; a short key or a negative
// version is ErrInvalid.
func ParseControlKey(key []byte) (ControlKey, error) {
	if len(key) < controlKeySize {
		return ControlKey{}, fmt.Errorf("%w: control key of %d bytes", ErrInvalid, len(key))
	}
	k := ControlKey{
		Version: int16(binary.BigEndian.Uint16(key)),
		Type:    ControlType(binary.BigEndian.Uint16(key[2:])),
	}
	if k.Version < 0 {
		return ControlKey{}, fmt.Errorf("%w: control key version %d", ErrInvalid, k.Version)
	}
	return k, nil
}

// EndTxnMarker returns the control record that ends a transaction, for a
// batch built with Control, Transactional and the producer's id and epoch
// (BaseSequence -1). Its key is ControlKey{0, t}; its value is Kafka's
// EndTransactionMarker version 0: version int16 and coordinator epoch int32.
func EndTxnMarker(t ControlType, coordinatorEpoch int32) Record {
	key := binary.BigEndian.AppendUint16(make([]byte, 0, controlKeySize), 0)
	key = binary.BigEndian.AppendUint16(key, uint16(t))
	value := binary.BigEndian.AppendUint16(make([]byte, 0, 6), 0)
	value = binary.BigEndian.AppendUint32(value, uint32(coordinatorEpoch))
	return Record{Key: key, Value: value}
}

// endTxnMarkerSize is the size of a version 0 EndTransactionMarker value.
const endTxnMarkerSize = 6

// ParseEndTxnMarker decodes the value of an abort or commit control record
// (Kafka's EndTransactionMarker) and returns its coordinator epoch. Later
// versions may append fields, which it ignores; a short value or a
// negative version is ErrInvalid.
func ParseEndTxnMarker(value []byte) (coordinatorEpoch int32, err error) {
	if len(value) < endTxnMarkerSize {
		return 0, fmt.Errorf("%w: end transaction marker of %d bytes", ErrInvalid, len(value))
	}
	if v := int16(binary.BigEndian.Uint16(value)); v < 0 {
		return 0, fmt.Errorf("%w: end transaction marker version %d", ErrInvalid, v)
	}
	return int32(binary.BigEndian.Uint32(value[2:])), nil
}
