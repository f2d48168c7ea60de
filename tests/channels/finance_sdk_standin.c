/*
 * A stand-in for WeCom's libWeWorkFinanceSdk_C.so, for siyu's tests only: the same C API
 * (NewSdk, Init, GetChatData, DecryptData, NewSlice, FreeSlice, GetContentFromSlice, GetSliceLen,
 * DestroySdk) over fixture records, so siyu's side is exercised for real: loading with ctypes, the
 * RSA unwrap of encrypt_random_key, paging by seq, and the SDK's errors.
 *
 * Records come from the file named by SIYU_STANDIN_CHATDATA, one per line: "<seq>\t<chatdata JSON>".
 * A line "<seq>\tERROR <code>" makes GetChatData return <code> when a page would start there (records
 * before it are answered first); a line "SECRET <value>" makes GetChatData answer errcode 40001 unless
 * Init was given that secret; a line "PROXY <url>" makes it a network error (10001) unless called
 * through that proxy (a corp whose trusted IP is its proxy's).
 *
 * Decryption is NOT the platform's AES: encrypt_chat_msg is base64 of ("SIYU" + message JSON) XORed
 * with the random key, a simple reversible scheme. A wrong key leaves no "SIYU" prefix: 10006.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Slice_t { char *buf; int len; } Slice_t;
typedef struct WeWorkFinanceSdk_t { char secret[256]; int ready; } WeWorkFinanceSdk_t;

WeWorkFinanceSdk_t *NewSdk(void) { return calloc(1, sizeof(WeWorkFinanceSdk_t)); }

void DestroySdk(WeWorkFinanceSdk_t *sdk) { free(sdk); }

int Init(WeWorkFinanceSdk_t *sdk, const char *corpid, const char *secret) {
    if (!sdk || !corpid || !secret || !*corpid || !*secret || strlen(secret) >= sizeof(sdk->secret)) return 10000;
    strcpy(sdk->secret, secret);
    sdk->ready = 1;
    return 0;
}

Slice_t *NewSlice(void) { return calloc(1, sizeof(Slice_t)); }

void FreeSlice(Slice_t *slice) {
    if (slice) { free(slice->buf); free(slice); }
}

char *GetContentFromSlice(Slice_t *slice) { return slice ? slice->buf : NULL; }

int GetSliceLen(Slice_t *slice) { return slice ? slice->len : 0; }

static void put(Slice_t *slice, const char *data, size_t len) {
    free(slice->buf);
    slice->buf = malloc(len + 1);
    memcpy(slice->buf, data, len);
    slice->buf[len] = 0;
    slice->len = (int)len;
}

typedef struct { char *data; size_t len, cap; } Buf;

static void append(Buf *b, const char *text) {
    size_t n = strlen(text);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, text, n + 1);
    b->len += n;
}

int GetChatData(WeWorkFinanceSdk_t *sdk, unsigned long long seq, unsigned int limit, const char *proxy,
                const char *passwd, int timeout, Slice_t *out) {
    (void)passwd; (void)timeout;
    if (!sdk || !sdk->ready || !out || limit == 0 || limit > 1000) return 10000;
    const char *path = getenv("SIYU_STANDIN_CHATDATA");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return 10001;
    static char line[1 << 16];
    Buf b = {0};
    unsigned int count = 0;
    int rc = 0;
    append(&b, "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[");
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "PROXY ", 6) == 0) {
            if (!proxy || strcmp(line + 6, proxy) != 0) { rc = 10001; break; }
            continue;
        }
        if (strncmp(line, "SECRET ", 7) == 0) {
            if (strcmp(line + 7, sdk->secret) != 0) {
                b.len = 0;
                append(&b, "{\"errcode\":40001,\"errmsg\":\"invalid secret\",\"chatdata\":[");
                break;
            }
            continue;
        }
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        if (strtoull(line, NULL, 10) <= seq) continue;
        const char *body = tab + 1;
        if (strncmp(body, "ERROR ", 6) == 0) {
            if (count == 0) rc = atoi(body + 6);
            break;
        }
        if (count == limit) break;
        if (count++) append(&b, ",");
        append(&b, body);
    }
    fclose(f);
    append(&b, "]}");
    if (rc == 0) put(out, b.data, b.len);
    free(b.data);
    return rc;
}

static int b64value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int DecryptData(const char *encrypt_key, const char *encrypt_msg, Slice_t *msg) {
    if (!encrypt_key || !*encrypt_key || !encrypt_msg || !msg) return 10000;
    size_t n = strlen(encrypt_msg), len = 0, keylen = strlen(encrypt_key);
    unsigned char *raw = malloc(n + 1);
    unsigned int acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && encrypt_msg[i] != '='; i++) {
        int v = b64value(encrypt_msg[i]);
        if (v < 0) { free(raw); return 10002; }
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) { bits -= 8; raw[len++] = (unsigned char)((acc >> bits) & 0xFF); }
    }
    for (size_t i = 0; i < len; i++) raw[i] ^= (unsigned char)encrypt_key[i % keylen];
    if (len < 4 || memcmp(raw, "SIYU", 4) != 0) { free(raw); return 10006; }
    put(msg, (const char *)raw + 4, len - 4);
    free(raw);
    return 0;
}
