/**
 * Header modifiers (Gateway API HTTPHeaderFilter): set replaces, add appends, remove deletes;
 * names are case-insensitive and stored lower-case. Examples follow the spec's field docs and
 * conformance HTTPRouteRequestHeaderModifier / HTTPRouteResponseHeaderModifier.
 */
import { describe, expect, it } from 'vitest';
import type { HeaderModifier } from '../../../sidecar/proxy/config/types.ts';
import { compileRouteTable } from '../../../sidecar/proxy/router/compile.ts';
import type { CompiledHeaderModifier, HeaderMap } from '../../../sidecar/proxy/router/types.ts';

function modifiers(request?: HeaderModifier, response?: HeaderModifier) {
  const t = compileRouteTable({
    name: 'h',
    virtualHosts: [
      {
        name: 'vh',
        routes: [
          {
            name: 'r',
            route: { clusters: [{ name: 'c' }] },
            ...(request === undefined ? {} : { requestHeaderModifier: request }),
            ...(response === undefined ? {} : { responseHeaderModifier: response }),
          },
        ],
      },
    ],
  });
  const result = t.match({ host: 'any', path: '/', query: '', method: 'GET', headers: {} });
  if (result === undefined) throw new Error('no route');
  return { request: result.requestHeaderModifier, response: result.responseHeaderModifier };
}

function applied(mod: CompiledHeaderModifier | undefined, headers: HeaderMap): HeaderMap {
  if (mod === undefined) throw new Error('expected a compiled modifier');
  mod.apply(headers);
  return headers;
}

describe('header modifiers', () => {
  it('set replaces an existing value and adds a missing one, whatever the case of the name', () => {
    const mod = modifiers({
      set: [
        { name: 'My-Header', value: 'bar' },
        { name: 'X-New', value: 'n' },
      ],
    }).request;
    expect(applied(mod, { 'my-header': 'foo' })).toEqual({ 'my-header': 'bar', 'x-new': 'n' });
  });

  it('set replaces every value of a repeated field', () => {
    const mod = modifiers({ set: [{ name: 'x-tag', value: 'only' }] }).request;
    expect(applied(mod, { 'x-tag': ['a', 'b'] })).toEqual({ 'x-tag': 'only' });
  });

  it('add appends to an existing field, making it repeated', () => {
    const mod = modifiers({ add: [{ name: 'My-Header', value: 'bar' }] }).request;
    expect(applied(mod, { 'my-header': 'foo' })).toEqual({ 'my-header': ['foo', 'bar'] });
    expect(applied(mod, {})).toEqual({ 'my-header': 'bar' });
  });

  it('add appends to a repeated field without mutating the caller’s array', () => {
    const mod = modifiers(undefined, { add: [{ name: 'Set-Cookie', value: 'c=3' }] }).response;
    const cookies = ['a=1', 'b=2'];
    expect(applied(mod, { 'set-cookie': cookies })).toEqual({ 'set-cookie': ['a=1', 'b=2', 'c=3'] });
    expect(cookies).toEqual(['a=1', 'b=2']);
  });

  it('remove deletes the named fields, case-insensitively', () => {
    const mod = modifiers({ remove: ['My-Header1', 'MY-HEADER3'] }).request;
    expect(applied(mod, { 'my-header1': 'foo', 'my-header2': 'bar', 'my-header3': 'baz' })).toEqual({
      'my-header2': 'bar',
    });
  });

  it('runs remove, then set, then add', () => {
    const mod = modifiers({
      remove: ['x-a'],
      set: [{ name: 'x-a', value: 'set' }],
      add: [{ name: 'x-a', value: 'added' }],
    }).request;
    expect(applied(mod, { 'x-a': 'original' })).toEqual({ 'x-a': ['set', 'added'] });
  });

  it('conformance HTTPRouteRequestHeaderModifier: set, add and remove together', () => {
    const mod = modifiers({
      set: [{ name: 'X-Header-Set', value: 'set-overwrites-values' }],
      add: [{ name: 'X-Header-Add', value: 'add-appends-values' }],
      remove: ['X-Header-Remove'],
    }).request;
    const headers = {
      'x-header-set': 'some-other-value',
      'x-header-add': 'some-value',
      'x-header-remove': 'val',
    };
    expect(applied(mod, headers)).toEqual({
      'x-header-set': 'set-overwrites-values',
      'x-header-add': ['some-value', 'add-appends-values'],
    });
  });

  it('route-level request and response modifiers are compiled separately', () => {
    const { request, response } = modifiers(
      { set: [{ name: 'x-req', value: '1' }] },
      { set: [{ name: 'x-res', value: '2' }] },
    );
    expect(applied(request, {})).toEqual({ 'x-req': '1' });
    expect(applied(response, {})).toEqual({ 'x-res': '2' });
  });

  it('an empty modifier compiles to undefined so the caller can skip it', () => {
    expect(modifiers({ set: [], add: [], remove: [] }).request).toBeUndefined();
    expect(modifiers().request).toBeUndefined();
  });
});
