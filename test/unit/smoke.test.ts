import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/native/addon.js';
test('addon loads', () => { assert.equal(typeof native, 'object'); });
