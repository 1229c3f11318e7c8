using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Ui;

/// <summary>
/// The search page in a real browser (Debian's Chromium, driven by Playwright) against the started service with a
/// real PostgreSQL: add products, search by photo, by text and "more like this", filter, delete. Each state's
/// screenshot is written to artifacts/ui/.
/// </summary>
public sealed class SearchPageTests(ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";

    private static readonly string Artifacts = Path.Combine(SharedData.RepositoryRoot, "artifacts", "ui");

    [BrowserFact]
    public async Task Products_are_added_searched_by_photo_text_and_similarity_filtered_and_deleted_in_the_page()
    {
        await using var database = await TestDatabase.CreateAsync();
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            // UI_TEST_MODEL_DIR (e.g. the generated vit-b32) measures the page's latency on the full-size model.
            ["MODEL_DIR"] = Environment.GetEnvironmentVariable("UI_TEST_MODEL_DIR") ?? SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
            ["DATABASE_URL"] = database.Url,
        });
        Directory.CreateDirectory(Artifacts);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 900 } });
        var errors = new List<string>();
        page.Console += (_, message) => { if (message.Type == "error") errors.Add(message.Text); };
        page.PageError += (_, error) => errors.Add(error);
        await page.GotoAsync($"http://127.0.0.1:{port}/ui/");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("database ok");

        // Add products, two batches with their own metadata.
        await AddAsync(page, ["coffee.png", "coffee-progressive.jpg"], "{\"category\": \"drinks\"}");
        await AddAsync(page, ["chelsea.png", "astronaut.png", "camera.png"], "{\"category\": \"other\"}");
        await Shot(page, "1-added");

        // Search by photo: the same image comes first, every thumbnail loads.
        await page.GetByTestId("query-file").SetInputFilesAsync(SharedData.Image("coffee.png"));
        await Assertions.Expect(page.GetByTestId("result").First).ToHaveAttributeAsync("data-id", "coffee.png");
        await Assertions.Expect(page.Locator("#query-preview")).ToBeVisibleAsync();
        await AssertThumbnailsLoadedAsync(page);
        await Shot(page, "2-search-by-photo");
        await page.SetViewportSizeAsync(900, 640);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "readme.png") });
        await page.SetViewportSizeAsync(1100, 900);

        // Search by text (Enter submits).
        await page.GetByTestId("query-text").FillAsync("a cup of coffee");
        await page.GetByTestId("query-text").PressAsync("Enter");
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("results for “a cup of coffee”");
        Assert.Equal(5, await page.GetByTestId("result").CountAsync());
        await Shot(page, "3-search-by-text");

        // From pressing Enter to the results drawn, 20 queries (printed; the figure is the benchmark's, not a target here).
        var timings = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            await page.GetByTestId("query-text").FillAsync($"red leather handbag {i}");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await page.GetByTestId("query-text").PressAsync("Enter");
            await Assertions.Expect(page.Locator("#message")).ToContainTextAsync($"handbag {i}”");
            await page.WaitForFunctionAsync("document.querySelectorAll('[data-testid=result]').length > 0");
            timings.Add(clock.Elapsed.TotalMilliseconds);
        }

        output.WriteLine($"Enter to results drawn, 20 text queries: p50 {timings.Order().ElementAt(10):F1} ms, max {timings.Max():F1} ms");

        // More like this: the item itself is not among its results.
        var first = await page.GetByTestId("result").First.GetAttributeAsync("data-id");
        await page.GetByTestId("result").First.GetByTestId("more-like-this").ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync($"more like “{first}”");
        var similar = await page.GetByTestId("result").EvaluateAllAsync<string[]>("cards => cards.map(c => c.dataset.id)");
        Assert.Equal(4, similar.Length);
        Assert.DoesNotContain(first, similar);
        await Shot(page, "4-more-like-this");

        // A metadata filter.
        await page.Locator("details summary").ClickAsync();
        await page.GetByTestId("filter").FillAsync("category = drinks");
        await page.GetByTestId("query-text").PressAsync("Enter");
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("2 results");
        var filtered = await page.GetByTestId("result").EvaluateAllAsync<string[]>("cards => cards.map(c => c.dataset.id)");
        Assert.Equal(["coffee-progressive.jpg", "coffee.png"], filtered.Order(StringComparer.Ordinal));
        await Shot(page, "5-filtered");

        // Details and delete.
        await page.Locator("[data-testid=result][data-id='coffee.png'] button.open").ClickAsync();
        await Assertions.Expect(page.Locator("#detail")).ToBeVisibleAsync();
        await Shot(page, "6-details");
        await page.GetByTestId("delete").ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=result][data-id='coffee.png']")).ToHaveCountAsync(0);
        using (var http = new HttpClient())
        {
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync(new Uri($"http://127.0.0.1:{port}/items/coffee.png"))).StatusCode);
        }

        // Readable at 400 px: nothing wider than the screen.
        await page.SetViewportSizeAsync(400, 800);
        await page.GetByTestId("filter").FillAsync(string.Empty);
        await page.GetByTestId("query-file").SetInputFilesAsync(SharedData.Image("chelsea.png"));
        await Assertions.Expect(page.GetByTestId("result").First).ToHaveAttributeAsync("data-id", "chelsea.png");
        Assert.True(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= 400"), "the page is wider than 400 px");
        await Shot(page, "7-narrow");

        // A photo dropped on the page, and one pasted: here the astronaut's thumbnail, found as the astronaut.
        foreach (var gesture in new[] { "drop", "paste" })
        {
            await page.EvaluateAsync("""
                async gesture => {
                  const blob = await fetch('/items/astronaut.png/thumbnail').then(r => r.blob());
                  const data = new DataTransfer();
                  data.items.add(new File([blob], gesture + '.jpg', { type: 'image/jpeg' }));
                  document.dispatchEvent(gesture === 'drop'
                    ? new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true })
                    : new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
                }
                """, gesture);
            await Assertions.Expect(page.Locator("#message")).ToContainTextAsync($"the photo “{gesture}.jpg”");
            await Assertions.Expect(page.GetByTestId("result").First).ToHaveAttributeAsync("data-id", "astronaut.png");
        }

        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [BrowserFact]
    public async Task Without_storage_the_page_says_what_to_do()
    {
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
        });
        Directory.CreateDirectory(Artifacts);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox", "--disable-gpu"] });
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"http://127.0.0.1:{port}/ui/");
        await page.GetByTestId("query-text").FillAsync("shoes");
        await page.GetByTestId("query-text").PressAsync("Enter");
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Storage is not configured: start the service with DATABASE_URL");
        await Shot(page, "0-storage-not-configured");
    }

    [BrowserFact]
    public async Task With_api_keys_the_page_asks_for_a_key_once_and_keeps_it_for_the_tab()
    {
        await using var database = await TestDatabase.CreateAsync();
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
            ["DATABASE_URL"] = database.Url,
            ["API_KEYS"] = "page-test-key",
        });
        Directory.CreateDirectory(Artifacts);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox", "--disable-gpu"] });
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"http://127.0.0.1:{port}/ui/");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("database ok");

        // Three uploads refused at once: one question, a wrong key asked again, then all three go through.
        await page.GetByTestId("add-files").SetInputFilesAsync(new[] { "coffee.png", "chelsea.png", "astronaut.png" }.Select(SharedData.Image));
        await page.GetByTestId("add-submit").ClickAsync();
        await Assertions.Expect(page.Locator("#key-dialog")).ToBeVisibleAsync();
        await page.Locator("#api-key").FillAsync("not-the-key");
        await page.Locator("#key-use").ClickAsync();
        await Assertions.Expect(page.Locator("#key-reason")).ToContainTextAsync("not accepted");
        await Shot(page, "7-api-key");
        await page.Locator("#api-key").FillAsync("page-test-key");
        await page.Locator("#key-use").ClickAsync();
        await Assertions.Expect(page.GetByTestId("add-results").Locator("li:not(.failed)")).ToHaveCountAsync(3);

        // Thumbnails come with the key too; after a reload the tab still has it.
        await page.ReloadAsync();
        await page.GetByTestId("query-file").SetInputFilesAsync(SharedData.Image("coffee.png"));
        await Assertions.Expect(page.GetByTestId("result").First).ToHaveAttributeAsync("data-id", "coffee.png");
        await AssertThumbnailsLoadedAsync(page);
        Assert.False(await page.Locator("#key-dialog").IsVisibleAsync());
        Assert.Equal("page-test-key", await page.EvaluateAsync<string>("sessionStorage.getItem('embedding-service-api-key')"));
    }

    /// <summary>
    /// A catalogue of products (several photos each, titles with a SKU): results come one per product with its count of
    /// matched photos, a photo search is refined with words, a result's "less like this" leaves that product's photo
    /// out, and hybrid search marks the product whose SKU was typed.
    /// </summary>
    [BrowserFact]
    public async Task Products_are_shown_grouped_refined_with_words_and_matched_by_their_sku()
    {
        await using var database = await TestDatabase.CreateAsync();
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, database.ServiceSettings(("LOG_LEVEL", "warning")));
        using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") })
        {
            for (var wait = 0; wait < 600 && !(await http.GetAsync(new Uri("/health/ready", UriKind.Relative))).IsSuccessStatusCode; wait++)
            {
                await Task.Delay(100);
            }

            foreach (var (image, product, text) in new[]
            {
                ("coffee.png", "mug", "Ceramic mug CM-100"), ("coffee-progressive.jpg", "mug", "Ceramic mug CM-100, side"),
                ("chelsea.png", "cat", "Cat poster CP-77"), ("chelsea-exif6.jpg", "cat", "Cat poster CP-77, framed"), ("astronaut.png", null, null),
            })
            {
                using var form = Api.ServiceFactory.Form(await File.ReadAllBytesAsync(SharedData.Image(image)), fileName: image);
                if (product is not null) form.Add(new StringContent(product), "product");
                if (text is not null) form.Add(new StringContent(text), "text");
                Assert.Equal(System.Net.HttpStatusCode.Created, (await http.PutAsync(new Uri($"/items/{image}", UriKind.Relative), form)).StatusCode);
            }
        }

        await using var session = await BrowserSession.OpenAsync(port);
        var (page, errors) = (session.Page, session.Errors);

        // One card per product: the mug's two photos are one result, with its best photo (the same image) shown.
        await page.GetByTestId("query-file").SetInputFilesAsync(SharedData.Image("coffee.png"));
        await Assertions.Expect(page.GetByTestId("result").First).ToHaveAttributeAsync("data-id", "coffee.png");
        Assert.Equal(3, await page.GetByTestId("result").CountAsync());
        await Assertions.Expect(page.GetByTestId("result").First.GetByTestId("product")).ToHaveTextAsync("mug · 2 photos matched");
        await Assertions.Expect(page.Locator("[data-testid=result][data-product=cat] [data-testid=product]")).ToHaveTextAsync("cat · 2 photos matched");
        await Assertions.Expect(page.Locator("[data-testid=result][data-id='astronaut.png'] [data-testid=product]")).ToHaveCountAsync(0);
        await Shot(page, "products-1-grouped");

        // Refine the photo with words: the query becomes the photo plus the words, still one card per product.
        await Assertions.Expect(page.GetByTestId("refine-form")).ToBeVisibleAsync();
        await page.GetByTestId("refine-text").FillAsync("a cat poster");
        await page.GetByTestId("refine-submit").ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("results for the photo “coffee.png” + “a cat poster”");
        Assert.Equal(3, await page.GetByTestId("result").CountAsync());
        await Shot(page, "products-2-refined");

        // Less like the cat poster's best photo: that photo is named by the query, so it is never a result.
        var catPhoto = await page.Locator("[data-testid=result][data-product=cat]").GetAttributeAsync("data-id");
        await page.Locator("[data-testid=result][data-product=cat]").GetByTestId("less-like-this").ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync($"− less like “{catPhoto}”");
        await Assertions.Expect(page.Locator($"[data-testid=result][data-id='{catPhoto}']")).ToHaveCountAsync(0);

        // The shopper's words: hybrid search with a SKU puts its product first and marks the match; a text search hides the refine box.
        await page.Locator("details summary").ClickAsync();
        await page.GetByTestId("mode").SelectOptionAsync("hybrid");
        await page.GetByTestId("query-text").FillAsync("CP-77");
        await page.GetByTestId("query-text").PressAsync("Enter");
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("results for “CP-77”");
        await Assertions.Expect(page.GetByTestId("result").First).ToHaveAttributeAsync("data-product", "cat");
        await Assertions.Expect(page.GetByTestId("result").First.GetByTestId("keyword-match")).ToBeVisibleAsync();
        Assert.Equal(1, await page.GetByTestId("keyword-match").CountAsync());
        await Assertions.Expect(page.GetByTestId("refine-form")).ToBeHiddenAsync();
        await Shot(page, "products-3-hybrid-sku");
        Assert.Empty(errors);
    }

    /// <summary>The duplicates view (an exact copy found, its keeper marked, resolved behind a confirmation) and tags on results.</summary>
    [BrowserFact]
    public async Task Duplicates_are_shown_and_resolved_after_a_confirmation_and_results_carry_their_top_tags()
    {
        await using var database = await TestDatabase.CreateAsync();
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, database.ServiceSettings(("LOG_LEVEL", "warning")));
        await using var session = await BrowserSession.OpenAsync(port);
        var (page, errors) = (session.Page, session.Errors);
        await AddAsync(page, ["coffee.png", "chelsea.png", "astronaut.png"], "{}");
        // The same photo again under another name: an exact copy.
        using (var copy = new TempDirectory("ui-copy"))
        {
            File.Copy(SharedData.Image("coffee.png"), copy.Combine("coffee-copy.png"));
            await page.GetByTestId("add-files").SetInputFilesAsync(copy.Combine("coffee-copy.png"));
            await page.GetByTestId("add-submit").ClickAsync();
            await Assertions.Expect(page.GetByTestId("add-results").Locator("li")).ToHaveTextAsync("coffee-copy.png: added");
        }

        await page.GetByTestId("find-duplicates").ClickAsync();
        await Assertions.Expect(page.GetByTestId("duplicate-group")).ToHaveCountAsync(1);
        await Assertions.Expect(page.GetByTestId("duplicate-group").Locator("figure.keep")).ToHaveAttributeAsync("data-id", "coffee.png");
        await Assertions.Expect(page.GetByTestId("duplicate-group")).ToContainTextAsync("Exact copies");
        await Shot(page, "duplicates-1-found");

        // Cancelling deletes nothing; confirming deletes the copy only.
        await page.GetByTestId("resolve").ClickAsync();
        await Assertions.Expect(page.GetByTestId("resolve-dialog")).ToContainTextAsync("Keep “coffee.png” and delete “coffee-copy.png”");
        await page.GetByTestId("resolve-cancel").ClickAsync();
        await Assertions.Expect(page.GetByTestId("duplicate-group")).ToHaveCountAsync(1);
        await page.GetByTestId("resolve").ClickAsync();
        await page.GetByTestId("resolve-confirm").ClickAsync();
        await Assertions.Expect(page.Locator("#message")).ToContainTextAsync("Deleted 1 duplicate of “coffee.png”");
        Assert.Equal(3L, await database.ScalarAsync<long>("SELECT count(*) FROM items"));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM items WHERE id = 'coffee-copy.png'"));
        await page.GetByTestId("find-duplicates").ClickAsync();
        await Assertions.Expect(page.GetByTestId("duplicates-summary")).ToHaveTextAsync("No duplicates found.");

        // Tags for a label set typed once: every result shows its top ones.
        await page.Locator("details summary").ClickAsync();
        await page.GetByTestId("tag-labels").FillAsync("cat, coffee, astronaut, camera");
        await page.GetByTestId("query-text").FillAsync("a cup");
        await page.GetByTestId("query-text").PressAsync("Enter");
        await Assertions.Expect(page.GetByTestId("tags")).ToHaveCountAsync(3);
        var tags = await page.GetByTestId("tags").AllTextContentsAsync();
        Assert.All(tags, t => Assert.Matches(@"^\w+ \d+% · \w+ \d+% · \w+ \d+%$", t));
        await Shot(page, "duplicates-2-tags");
        Assert.Empty(errors);
    }

    /// <summary>Debian's Chromium on the page at /ui/, once the page says the database is reachable; the page's script errors collected.</summary>
    private sealed class BrowserSession : IAsyncDisposable
    {
        private IPlaywright? _playwright;
        private IBrowser? _browser;

        public IPage Page { get; private set; } = null!;

        public List<string> Errors { get; } = [];

        public static async Task<BrowserSession> OpenAsync(int port)
        {
            Directory.CreateDirectory(Artifacts);
            var session = new BrowserSession { _playwright = await Playwright.CreateAsync() };
            session._browser = await session._playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = Chromium,
                Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            });
            session.Page = await session._browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 900 } });
            session.Page.PageError += (_, error) => session.Errors.Add(error);
            await session.Page.GotoAsync($"http://127.0.0.1:{port}/ui/");
            await Assertions.Expect(session.Page.Locator("#status")).ToContainTextAsync("database ok");
            return session;
        }

        public async ValueTask DisposeAsync()
        {
            if (_browser is not null) await _browser.DisposeAsync();
            _playwright?.Dispose();
        }
    }

    private static async Task AddAsync(IPage page, string[] images, string metadata)
    {
        await page.GetByTestId("add-files").SetInputFilesAsync(images.Select(SharedData.Image));
        await page.GetByTestId("add-metadata").FillAsync(metadata);
        await page.GetByTestId("add-submit").ClickAsync();
        await Assertions.Expect(page.GetByTestId("add-results").Locator("li")).ToHaveCountAsync(images.Length);
        Assert.Equal(images.Length, await page.GetByTestId("add-results").Locator("li:not(.failed)").CountAsync());
    }

    private static async Task AssertThumbnailsLoadedAsync(IPage page)
    {
        await page.WaitForFunctionAsync("[...document.querySelectorAll('[data-testid=result] img')].every(i => i.complete)");
        var widths = await page.Locator("[data-testid=result] img").EvaluateAllAsync<int[]>("images => images.map(i => i.naturalWidth)");
        Assert.NotEmpty(widths);
        Assert.All(widths, width => Assert.True(width > 0, "a thumbnail did not load"));
    }

    private async Task Shot(IPage page, string name)
    {
        var path = Path.Combine(Artifacts, $"{name}.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        output.WriteLine($"screenshot: {path}");
    }
}

/// <summary>A browser test: needs Debian's Chromium (scripts/test.sh installs it), the test PostgreSQL and ../shared.</summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (!File.Exists("/usr/bin/chromium"))
        {
            Skip = "/usr/bin/chromium is missing: scripts/test.sh installs Debian's chromium";
        }
        else if (TestDatabase.ServerUrl is null)
        {
            Skip = TestDatabase.MissingMessage;
        }
        else if (!SharedData.Available)
        {
            Skip = SharedData.MissingMessage;
        }
    }
}
