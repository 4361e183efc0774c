// The kernel lab on linux-source-6.1: builds (or reuses) the kernel, boots it once
// and checks memsleuth's findings on the captures. See test/lab/lab-suite.ts.
import { describeLab } from './lab-suite.js';

describeLab('6.1');
