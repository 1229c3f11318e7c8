namespace Onnx;

/// <summary>How a quantized MatMul is written in the graph.</summary>
public enum Int8Operator
{
    /// <summary>One <c>com.microsoft</c> <c>DynamicQuantizeMatMul</c> node (ONNX Runtime's contrib operator).</summary>
    DynamicQuantizeMatMul,

    /// <summary>
    /// Standard ONNX only: <c>DynamicQuantizeLinear</c> -> <c>MatMulInteger</c> -> <c>Cast</c> -> <c>Mul</c> by the two
    /// scales, for runtimes without ONNX Runtime's contrib operators.
    /// </summary>
    MatMulInteger,
}
