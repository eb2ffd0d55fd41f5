;; A plain core Wasm module: valid Wasm, but with no component type at all, so it is no pingpost plugin. Its export
;; is even named like the contract's, to show that a name alone does not make a plugin.
(module
  (memory (export "memory") 1)
  (func (export "pingpost:plugin/bidder@0.1.0#bid") (param i32 i32) (result i32)
    i32.const 0)
)
