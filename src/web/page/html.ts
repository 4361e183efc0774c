import htm from 'htm';
import { h } from 'preact';

/** Tagged templates for preact: html`<div class=${c}>...</div>` (no JSX step in the build). */
export const html = htm.bind(h);
