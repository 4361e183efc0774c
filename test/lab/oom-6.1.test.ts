// The lab's OOM boot on linux-source-6.1 (lab/oom.ts): see test/lab/oom-suite.ts.
import { describeOomLab } from './oom-suite.js';

describeOomLab('6.1');
