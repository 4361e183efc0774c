// Kernel allocation tracing in the lab kernel 6.12 (one cached boot). See trace-kmem-suite.ts.
import { describeTraceLab } from './trace-kmem-suite.js';

describeTraceLab('6.12');
