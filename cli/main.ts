#!/usr/bin/env node
// The `fragfs` command's entry: the process settings first, then the program (cli/program.ts),
// imported only once they are in place. The start-up interrupt budget must be set before the
// program's modules load: set in the same module graph (evaluated first, but after the whole graph
// was loaded), it changed nothing measurable (`stats` 0.54 CPU-s with it, 0.55 without, 8 runs each).

import './env.js';
import './start-up-tiering.js';

await import('./program.js');
