namespace EmbeddingService.Model;

/// <summary>A model directory that cannot be used; the message names the file and what is wrong with it.</summary>
public sealed class ModelDirectoryException : Exception
{
    public ModelDirectoryException()
    {
    }

    public ModelDirectoryException(string message)
        : base(message)
    {
    }

    public ModelDirectoryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
