// Process settings that must be in place before anything touches the libuv thread pool: it is
// imported first by cli/main.ts. Stores fsync many small files in parallel, and with libuv's
// default of 4 threads those fsyncs queue behind each other.

process.env['UV_THREADPOOL_SIZE'] ??= '16';
