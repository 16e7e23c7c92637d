/**
 * wirebook's small shared library: framing, retries and the command-line
 * plumbing every script shares. Nothing in it knows any protocol.
 *
 * - Framing: {@linkcode readExactly}, {@linkcode writeAll},
 *   {@linkcode DelimiterStream} (lines, with a cap), {@linkcode BufferedReader}
 *   (lines and byte counts mixed on one connection), length-prefixed frames
 *   ({@linkcode encodeFrame}, {@linkcode decodeFrame}, {@linkcode readFrame},
 *   {@linkcode FrameEncoderStream}, {@linkcode FrameDecoderStream}), and their
 *   errors {@linkcode UnexpectedEofError}, {@linkcode FrameTooLargeError}.
 * - Retries: {@linkcode retry}, {@linkcode RetryError}, {@linkcode withTimeout}.
 * - Command line: {@linkcode parseFlags}, {@linkcode UsageError},
 *   {@linkcode runMain}, {@linkcode describeError},
 *   {@linkcode listeningBanner}, {@linkcode shutdownSignal}.
 * - Sockets: {@linkcode acceptConnections} (an accept loop that outlives a
 *   failed accept()), {@linkcode formatAddress}, {@linkcode listenUdp} (with a
 *   clear word when `--unstable-net` is missing), {@linkcode localAddressFor}.
 *
 * @example
 * ```ts
 * import { encodeFrame, decodeFrame } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeFrame(new Uint8Array([42]));
 * assert.deepEqual(decodeFrame(frame)?.payload, new Uint8Array([42]));
 * ```
 *
 * @module
 */

export * from "./read_exactly.ts";
export * from "./write_all.ts";
export * from "./delimiter_stream.ts";
export * from "./buffered_reader.ts";
export * from "./encode_frame.ts";
export * from "./decode_frame.ts";
export * from "./read_frame.ts";
export * from "./frame_encoder_stream.ts";
export * from "./frame_decoder_stream.ts";
export * from "./unexpected_eof_error.ts";
export * from "./frame_too_large_error.ts";
export * from "./retry.ts";
export * from "./retry_error.ts";
export * from "./with_timeout.ts";
export * from "./parse_flags.ts";
export * from "./usage_error.ts";
export * from "./run_main.ts";
export * from "./describe_error.ts";
export * from "./listening_banner.ts";
export * from "./shutdown_signal.ts";
export * from "./accept_connections.ts";
export * from "./format_address.ts";
export * from "./listen_udp.ts";
export * from "./local_address_for.ts";
