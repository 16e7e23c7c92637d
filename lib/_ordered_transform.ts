// Private to lib/: a transform stream whose errors keep their place in line.
//
// When a TransformStream's transform() throws, the stream errors at once and
// every chunk it had already enqueued, but the reader had not yet read, is
// thrown away. For a framing decoder that is data loss: two good lines and an
// overlong third arriving in one TCP segment would lose the two good lines.
//
// So the work runs in an inner stream that never throws: an error travels
// down as a marker after the chunks before it, and an outer stream turns the
// marker back into an error once the reader reaches it. The inner stream also
// terminates at once, which stops the pipe feeding it: nothing more is read
// from the source after the error.

/** The transform logic: emit outputs through `enqueue`; throw to fail. */
export interface OrderedTransformer<I, O> {
  transform(chunk: I, enqueue: (output: O) => void): void;
  flush?(enqueue: (output: O) => void): void;
}

class Failure {
  constructor(readonly error: unknown) {}
}

/** A readable/writable pair running `transformer`, with errors delivered in order. */
export function orderedTransform<I, O>(
  transformer: OrderedTransformer<I, O>,
): { readable: ReadableStream<O>; writable: WritableStream<I> } {
  const inner = new TransformStream<I, O | Failure>({
    transform(chunk, controller) {
      try {
        transformer.transform(chunk, (output) => controller.enqueue(output));
      } catch (error) {
        controller.enqueue(new Failure(error));
        controller.terminate();
      }
    },
    flush(controller) {
      try {
        transformer.flush?.((output) => controller.enqueue(output));
      } catch (error) {
        controller.enqueue(new Failure(error));
      }
    },
  });
  const outer = new TransformStream<O | Failure, O>({
    transform(chunk, controller) {
      if (chunk instanceof Failure) throw chunk.error;
      controller.enqueue(chunk);
    },
  });
  // Errors reach the reader through `outer`; this promise has nothing to add.
  inner.readable.pipeTo(outer.writable).catch(() => {});
  return { readable: outer.readable, writable: inner.writable };
}
