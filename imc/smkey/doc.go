// Package smkeyimc is the endpoint side of SM2 key-pair enrollment (PA
// subtype vendor patnc.VendorTrustnac, subtype
// patnc.PASubtypeTrustnacSMKey), for endpoints without a TPM: the agent
// holds an SM2 private key in a PEM file, sends its public key with a PSK
// Request when it wants a PSK for the SM channel, and decrypts the PSK the
// PDP SM2-encrypted to it (GB/T 32918.4, C1C3C2). The admin registers the
// public key with the PDP beforehand (see package smkeyimv and
// Collector.PublicKeyPEM).
package smkeyimc
