#ifndef JOBWORKER_COPENSSL_SHIM_H
#define JOBWORKER_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/bn.h>
#include <openssl/rand.h>

// OpenSSL exposes these operations as function-like macros, which Swift cannot call.
// Each wrapper forwards to the macro of the same name without the `jw_` prefix.

static inline int jw_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

static inline int jw_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

static inline long jw_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

static inline long jw_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

static inline int jw_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

static inline size_t jw_BIO_pending(BIO *bio) {
    return (size_t)BIO_pending(bio);
}

static inline int jw_BIO_set_mem_eof_return(BIO *bio, int value) {
    return (int)BIO_set_mem_eof_return(bio, value);
}

static inline unsigned long jw_XN_FLAG_RFC2253(void) {
    return XN_FLAG_RFC2253;
}

// EVP_EC_gen expands to the variadic EVP_PKEY_Q_keygen, which Swift cannot call.
static inline EVP_PKEY *jw_EVP_EC_gen(const char *curve) {
    return EVP_EC_gen(curve);
}

static inline const char *jw_OPENSSL_VERSION_TEXT(void) {
    return OPENSSL_VERSION_TEXT;
}

#endif
