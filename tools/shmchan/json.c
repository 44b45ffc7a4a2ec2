/*
 * JSON output through libjansson, when the build found it. Without it every
 * function is a no-op and json_available() says so; main.c then refuses
 * --json with a clear message before any command runs.
 *
 * Messages are bytes: valid UTF-8 goes out as a JSON string ("encoding":
 * "utf-8", NUL and control bytes escaped by jansson as \u00XX), anything
 * else as base64 ("encoding": "base64"), so every message round-trips.
 */
#include <string.h>

#include "cli.h"

#ifdef SHMCHAN_CLI_HAVE_JANSSON
#include <jansson.h>
#include <stdlib.h>

#define J(v) ((json_t *)(void *)(v))
#define C(v) ((cli_json *)(void *)(v))

bool
json_available(void)
{
    return true;
}

cli_json *
json_obj(void)
{
    return C(json_object());
}

cli_json *
json_arr(void)
{
    return C(json_array());
}

void
json_set(cli_json *obj, const char *key, cli_json *val)
{
    json_object_set_new(J(obj), key, J(val));
}

void
json_push(cli_json *arr, cli_json *val)
{
    json_array_append_new(J(arr), J(val));
}

void
json_set_u64(cli_json *obj, const char *key, uint64_t v)
{
    /* json_int_t is long long: sequence numbers and sizes stay far below 2^63. */
    json_object_set_new(J(obj), key, json_integer((json_int_t)v));
}

void
json_set_i64(cli_json *obj, const char *key, int64_t v)
{
    json_object_set_new(J(obj), key, json_integer((json_int_t)v));
}

void
json_set_str(cli_json *obj, const char *key, const char *s)
{
    json_object_set_new(J(obj), key, json_string(s));
}

void
json_set_bool(cli_json *obj, const char *key, bool v)
{
    json_object_set_new(J(obj), key, json_boolean(v));
}

void
json_set_f64(cli_json *obj, const char *key, double v)
{
    json_object_set_new(J(obj), key, json_real(v));
}

static char *
base64(const unsigned char *p, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL) {
        return NULL;
    }
    char *o = out;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        v |= i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0;
        v |= i + 2 < len ? (uint32_t)p[i + 2] : 0;
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

void
json_set_bytes(cli_json *obj, const void *data, size_t len)
{
    json_set_u64(obj, "len", len);
    json_t *s = json_stringn((const char *)data, len); /* NULL unless valid UTF-8 */
    if (s != NULL) {
        json_set_str(obj, "encoding", "utf-8");
        json_object_set_new(J(obj), "data", s);
        return;
    }
    char *b = base64(data, len);
    json_set_str(obj, "encoding", "base64");
    json_object_set_new(J(obj), "data", b != NULL ? json_string(b) : json_null());
    free(b);
}

int
json_print(cli_json *v, bool pretty)
{
    int rc = json_dumpf(J(v), stdout, pretty ? JSON_INDENT(2) : JSON_COMPACT);
    json_decref(J(v));
    if (rc != 0 || fputc('\n', stdout) == EOF) {
        return -1;
    }
    return 0;
}

#else /* no libjansson */

bool
json_available(void)
{
    return false;
}

cli_json *
json_obj(void)
{
    return NULL;
}

cli_json *
json_arr(void)
{
    return NULL;
}

void
json_set(cli_json *obj, const char *key, cli_json *val)
{
    (void)obj, (void)key, (void)val;
}

void
json_push(cli_json *arr, cli_json *val)
{
    (void)arr, (void)val;
}

void
json_set_u64(cli_json *obj, const char *key, uint64_t v)
{
    (void)obj, (void)key, (void)v;
}

void
json_set_i64(cli_json *obj, const char *key, int64_t v)
{
    (void)obj, (void)key, (void)v;
}

void
json_set_str(cli_json *obj, const char *key, const char *s)
{
    (void)obj, (void)key, (void)s;
}

void
json_set_bool(cli_json *obj, const char *key, bool v)
{
    (void)obj, (void)key, (void)v;
}

void
json_set_f64(cli_json *obj, const char *key, double v)
{
    (void)obj, (void)key, (void)v;
}

void
json_set_bytes(cli_json *obj, const void *data, size_t len)
{
    (void)obj, (void)data, (void)len;
}

int
json_print(cli_json *v, bool pretty)
{
    (void)v, (void)pretty;
    return -1;
}

#endif
