/*
 * edgerec_tv.h — the plain ABI of edgerec_tv.wasm (ABI version 1), for a native TV shell that
 * embeds a WebAssembly runtime (wasmi, WAMR, wasm3, wasmtime…). The module imports nothing and
 * exports its linear memory as "memory" and the functions below; every value is an i32, i64 or
 * f64 in the module's terms. See crates/edgerec-tv/README.md for a walk-through.
 *
 * Handles. Everything the module owns — byte buffers, recommenders, user states — is named by a
 * handle, a positive int32. Handles are never reused: a freed or made-up handle is refused with
 * EDGEREC_E_BAD_HANDLE. Free every handle you get with edgerec_free.
 *
 * Passing bytes in: h = edgerec_buffer_new(len); copy len bytes to module memory at
 * edgerec_buffer_ptr(h); pass h. Getting bytes out: functions that return data return a new
 * buffer handle; read edgerec_buffer_len(h) bytes at edgerec_buffer_ptr(h), then edgerec_free(h).
 * A pointer is valid until the next call that may allocate (any call but _ptr/_len): memory can
 * grow and the host's view of it must be re-fetched after every call.
 *
 * Errors. Functions returning int32 return a handle or 0 on success and a negative
 * EDGEREC_E_* code on failure; edgerec_last_error() then returns a buffer holding
 * {"code": "<name>", "message": "<for humans>"} as JSON (0 when the last call succeeded).
 * Bad input never traps the module; a trap means a bug (report it) and the instance must be
 * discarded.
 */
#ifndef EDGEREC_TV_H
#define EDGEREC_TV_H

#include <stdint.h>

#define EDGEREC_ABI_VERSION 1

/* The largest buffer edgerec_buffer_new accepts. */
#define EDGEREC_MAX_BUFFER_BYTES (1u << 30)

/* Error codes (the "code" names of edgerec_last_error in comments). */
#define EDGEREC_E_INVALID_ARGUMENT          (-1)  /* invalid_argument: a bad option, device, time… */
#define EDGEREC_E_BAD_HANDLE                (-2)  /* bad_handle: not a live object of that kind */
#define EDGEREC_E_OUT_OF_MEMORY             (-3)  /* out_of_memory: a buffer past the limit, memory exhausted */
#define EDGEREC_E_TRUNCATED                 (-4)  /* truncated: the bundle is cut short */
#define EDGEREC_E_BAD_MAGIC                 (-5)  /* bad_magic: not an edgerec bundle */
#define EDGEREC_E_UNSUPPORTED_VERSION       (-6)  /* unsupported_version: a newer bundle format */
#define EDGEREC_E_CHECKSUM_MISMATCH         (-7)  /* checksum_mismatch: corrupted bytes */
#define EDGEREC_E_MALFORMED                 (-8)  /* malformed: intact bytes, invalid bundle */
#define EDGEREC_E_MISSING_SECTION           (-9)  /* missing_section */
#define EDGEREC_E_OVER_BUDGET               (-10) /* over_budget: the bundle needs more memory than allowed */
#define EDGEREC_E_CONTRACT_MISMATCH         (-11) /* contract_mismatch: a model does not fit its contract */
#define EDGEREC_E_RANKER_FAILED             (-12) /* ranker_failed */
#define EDGEREC_E_UNSUPPORTED_STATE_VERSION (-13) /* unsupported_state_version: keep the bytes */
#define EDGEREC_E_CORRUPT_STATE             (-14) /* corrupt_state: the bytes are unusable */
#define EDGEREC_E_OTHER                     (-15) /* other */
#define EDGEREC_E_BAD_MANIFEST              (-16) /* bad_manifest: an unreadable release manifest */
#define EDGEREC_E_BAD_SIGNATURE             (-17) /* bad_signature */
#define EDGEREC_E_UNTRUSTED_KEY             (-18) /* untrusted_key: not delegated by the trust root */
#define EDGEREC_E_ROLLBACK                  (-19) /* rollback: older than what the device has seen */
#define EDGEREC_E_EXPIRED                   (-20) /* expired */
#define EDGEREC_E_WRONG_CHANNEL             (-21) /* wrong_channel */
#define EDGEREC_E_SECTION_MISMATCH          (-22) /* section_mismatch: bytes differ from the manifest */

/* Devices, for the record_* calls. */
#define EDGEREC_DEVICE_TV      0
#define EDGEREC_DEVICE_DESKTOP 1
#define EDGEREC_DEVICE_MOBILE  2
#define EDGEREC_DEVICE_TABLET  3
#define EDGEREC_DEVICE_UNKNOWN 4

/* Pointers are offsets into the module's memory (wasm32). */
typedef uint32_t edgerec_ptr;

uint32_t edgerec_abi_version(void);

/* Buffers. */
int32_t edgerec_buffer_new(uint32_t len);            /* zero-filled; <= EDGEREC_MAX_BUFFER_BYTES */
edgerec_ptr edgerec_buffer_ptr(int32_t buffer);      /* 0 if not a live buffer */
int32_t edgerec_buffer_len(int32_t buffer);
int32_t edgerec_free(int32_t handle);                /* any handle */
int32_t edgerec_last_error(void);                    /* JSON buffer, or 0 */

/* Signed releases: verify before anything else is read. trust: a buffer with the trust root's
 * text (KEY or T:KEY,KEY,…); expect: JSON {"channel", "now"?, "installedVersion"?,
 * "keySetSerial"?}. Then fetch the sections the manifest lists, concatenate them in order into
 * one buffer, and assemble: each is checked against its length and sha256 first. */
int32_t edgerec_release_verify(int32_t manifest, int32_t trust, int32_t expect);
/* JSON buffer {"version","channel","label","created","expires","keySetSerial","bundleLength",
 * "sections":[{"tag","version","length","sha256"}]}. */
int32_t edgerec_release_manifest(int32_t release);
int32_t edgerec_release_assemble(int32_t release, int32_t sections);   /* bundle buffer */

/* Recommenders: verify every checksum and load a bundle (the buffer stays yours to free).
 * memory_budget_bytes caps the estimated memory of the bundle and one request of the largest
 * size, checked before anything is built (0: 256 MiB); above it: EDGEREC_E_OVER_BUDGET. */
int32_t edgerec_recommender_load(int32_t bundle, uint64_t memory_budget_bytes);
/* JSON buffer {"file","sections","runtimes","request","total"}: the estimate, in bytes. */
int32_t edgerec_recommender_memory(int32_t recommender);

/* User state: keep edgerec_state_export's bytes on the device, restore with _import. */
int32_t edgerec_state_new(void);
int32_t edgerec_state_import(int32_t bytes);
int32_t edgerec_state_export(int32_t state);         /* buffer */
int32_t edgerec_state_record_play(int32_t state, uint32_t item_id, int64_t unix_seconds,
                                  double fraction, uint32_t watched_seconds, uint32_t device);
int32_t edgerec_state_record_completion(int32_t state, uint32_t item_id, int64_t unix_seconds,
                                        uint32_t device);
/* item_ids: a buffer of little-endian uint32 ids. */
int32_t edgerec_state_record_impressions(int32_t state, int32_t item_ids, int64_t unix_seconds);

/* A row. options: a buffer holding the npm package's RowOptions as JSON, e.g.
 *   {"context":{"device":"tv","timestamp":1764446400,"utcOffsetMinutes":60},"k":10}
 * Returns a buffer with the package's Row as JSON (without "timings"):
 *   {"items":[{"itemId":…,"title":…,"year":…,"genres":[…],"score":…,"placedBy":…,
 *              "sources":[{"source":…,"rank":…}],"reason":…,"reasonKind":…}, …],
 *    "modelVersion":…,"candidates":…,"ranked":…,"sources":[{"source":…,"index":…}]} */
int32_t edgerec_recommend_row(int32_t recommender, int32_t state, int32_t options);

#endif /* EDGEREC_TV_H */
