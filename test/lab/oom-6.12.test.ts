// The lab's OOM boot on linux-source-6.12 (lab/oom.ts): see test/lab/oom-suite.ts.
import { describeOomLab } from './oom-suite.js';

describeOomLab('6.12');
