package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// inputRule is appended to every refused-input message.
const inputRule = "a Workflows input must be text, number, true/false or date & time"

// encodeBody validates req.Inputs and returns the JSON body: the inputs plus
// "idempotencyKey". Errors wrap ErrInvalidInput and name the offending key.
func encodeBody(req Request) ([]byte, error) {
	obj := make(map[string]any, len(req.Inputs)+1)
	for k, v := range req.Inputs {
		if k == "" {
			return nil, fmt.Errorf("%w: an input has an empty name", ErrInvalidInput)
		}
		if k == BodyIdempotencyKey {
			return nil, fmt.Errorf("%w: input %q is reserved; set Request.IdempotencyKey instead", ErrInvalidInput, k)
		}
		sv, err := scalar(v)
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %s (%s)", ErrInvalidInput, k, err.Error(), inputRule)
		}
		obj[k] = sv
	}
	if req.IdempotencyKey != "" {
		obj[BodyIdempotencyKey] = req.IdempotencyKey
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		// Unreachable: every value was checked above.
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

type inputError string

func (e inputError) Error() string { return string(e) }

// scalar converts an input value to a JSON scalar, or says why it cannot.
func scalar(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, inputError("nil is not accepted; leave the input out instead")
	case string, bool:
		return x, nil
	case json.Number:
		if _, err := json.Marshal(x); err != nil {
			return nil, inputError(fmt.Sprintf("json.Number %q is not a valid number", string(x)))
		}
		return x, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint(), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, inputError(fmt.Sprintf("%v is not a JSON number", f))
		}
		bits := 64
		if rv.Kind() == reflect.Float32 {
			bits = 32
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, bits)), nil
	case reflect.Slice, reflect.Array:
		return nil, inputError(fmt.Sprintf("%T is a list, which is not accepted", v))
	case reflect.Map:
		return nil, inputError(fmt.Sprintf("%T is an object, which is not accepted", v))
	case reflect.Struct:
		return nil, inputError(fmt.Sprintf("%T is an object, which is not accepted", v))
	case reflect.Pointer:
		return nil, inputError(fmt.Sprintf("%T is a pointer, which is not accepted; pass the value", v))
	}
	return nil, inputError(fmt.Sprintf("%T is not accepted", v))
}
