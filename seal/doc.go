// Package seal makes remediator's own records unforgeable by anyone who can reach NATS but
// does not hold a record key: dispatch jobs, status records, dead letters and audit records on
// the streams, job records and switch values in the KV buckets.
//
// A [Keyring] holds HMAC-SHA256 keys, each with an id; the first is the primary, which signs,
// and every key verifies. Rotating keys is adding a new key in front (it signs from then on)
// while the old ones still verify what they signed, then removing an old key once nothing it
// signed is still needed (see the README's Security section).
//
// Stream records keep their bodies: the MAC travels in the [Header] (Remediator-Mac) and is
// bound to the subject and the body ([Keyring.SignRecord], [Keyring.VerifyRecord]), so a
// record moved to another subject (a status turned into a success, a job moved to another
// flow) no longer verifies. KV values have no headers: [Keyring.SealValue] wraps the value in
// an envelope bound to the bucket and the key, and [Keyring.OpenValue] checks and unwraps it,
// so a value copied from another key does not verify either.
//
// [Keyring.Hash] is a keyed hash for names outsiders must not predict (job keys).
//
// Keys never leave the keyring: it has no accessor for a secret, and its String and
// LogValue show key ids only.
package seal
