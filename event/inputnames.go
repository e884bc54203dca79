package event

import (
	"reflect"
	"slices"
	"strings"
	"time"
)

// AdditionalDataPrefix starts the open ISPM inputs ("additionalDataLastLogin", …): any input
// whose name has it is passed through.
const AdditionalDataPrefix = additionalDataPrefix

// ISPMInputNames and RiskInputNames are the input names [Event.Inputs] can produce for an ISPM
// issue and for an entity-risk trigger, sorted. They are derived from Inputs itself, so they
// cannot drift from it. ISPM issues may also carry any "additionalData…" input (see
// [IsInputName]).
var (
	ISPMInputNames = inputNames(KindISPMIssue)
	RiskInputNames = inputNames(KindEntityRisk)
)

// InputNames returns the input names of events of kind k (nil for an unknown kind).
func InputNames(k Kind) []string {
	switch k {
	case KindISPMIssue:
		return slices.Clone(ISPMInputNames)
	case KindEntityRisk:
		return slices.Clone(RiskInputNames)
	}
	return nil
}

// IsInputName reports whether an event of kind k can carry the input name: one of
// [ISPMInputNames] or an "additionalData…" name for an ISPM issue, one of [RiskInputNames]
// for an entity-risk trigger.
func IsInputName(k Kind, name string) bool {
	switch k {
	case KindISPMIssue:
		if strings.HasPrefix(name, AdditionalDataPrefix) && len(name) > len(AdditionalDataPrefix) {
			return true
		}
		_, ok := slices.BinarySearch(ISPMInputNames, name)
		return ok
	case KindEntityRisk:
		_, ok := slices.BinarySearch(RiskInputNames, name)
		return ok
	}
	return false
}

// inputNames fills every string field of an event of kind k and returns the keys Inputs gives.
// The open additionalData map is left empty: its names are open.
func inputNames(k Kind) []string {
	e := &Event{Kind: k, Time: time.Unix(0, 0)}
	switch k {
	case KindISPMIssue:
		e.Issue = &Issue{}
	case KindEntityRisk:
		e.Risk = &RiskTrigger{}
	}
	fillStrings(reflect.ValueOf(e).Elem())
	var names []string
	for name := range e.Inputs() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// fillStrings sets every string field reachable through struct pointers to "x".
func fillStrings(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Pointer:
			if !f.IsNil() && f.Elem().Kind() == reflect.Struct {
				fillStrings(f.Elem())
			}
		}
	}
}
